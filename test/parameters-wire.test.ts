/**
 * Parameters on the wire (worker.proto, ParameterTensor): GetParameters in chunks of bounded size, put back
 * together exactly; SetParameters checked message by message as it arrives, so that an oversized or misshapen
 * stream is refused at its first wrong message, and an unconfigured worker refuses without reading the stream,
 * with the worker's memory flat whatever the caller offers. Real worker processes on loopback.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { getPreset, towerParamLayers } from '@alexnet-mp/core';
import { DEFAULT_CHUNK_BYTES, assembleParameters, clientStream, collectStream, protocol, type GetParametersRequest, type ParameterTensor, type WorkerClient } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const spec = getPreset('tiny');
const hyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

/** The resident memory of a process, in MiB (Linux). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/**
 * Offers a SetParameters stream of up to `count` messages made by `make(i)` (made as the stream pulls them), each
 * naming run `runId`, and says how it ended: the gRPC error, how long it took, and how many messages the stream pulled.
 */
async function offer(client: WorkerClient, runId: string, count: number, make: (i: number) => ParameterTensor): Promise<{ error: grpc.ServiceError | null; ms: number; pulled: number }> {
  let pulled = 0;
  function* msgs(): Generator<ParameterTensor> {
    for (let i = 0; i < count; i++) {
      pulled++;
      yield { ...make(i), run_id: runId };
    }
  }
  const t0 = performance.now();
  try {
    await clientStream(client.client, 'SetParameters', msgs(), { timeoutMs: 120_000 });
    return { error: null, ms: performance.now() - t0, pulled };
  } catch (e) {
    return { error: e as grpc.ServiceError, ms: performance.now() - t0, pulled };
  }
}

/** Two tiny workers configured by a coordinator (no step yet). */
async function configured(t: ExecutionContext): Promise<{ c: Coordinator; pids: [number, number] }> {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const c = new Coordinator({ spec, workers: [w0.address, w1.address], batch: 4, seed: 3, hyper, source: new SyntheticSource(spec, 3) });
  t.teardown(() => c.close());
  await c.start();
  return { c, pids: [w0.p.proc.pid!, w1.p.proc.pid!] };
}

// 512 KiB of zeros, offered again and again: 2,400 of them are 1.2 GB
const block = Buffer.alloc(512 * 1024);
const big = (layer: string): ParameterTensor => ({ layer, kind: 'w', tensor: { shape: [block.length / 4], data: block }, step: 0 });

test('SetParameters on an unconfigured worker: refused at once, without reading the 1.2 GB offered; the worker stays at its size', async (t) => {
  const w = await startWorker(t, 1);
  const { WorkerClient } = await import('@alexnet-mp/worker');
  const client = new WorkerClient(w.address, 8 << 20);
  t.teardown(() => client.close());
  await client.status(); // connected
  const before = rssMiB(w.p.proc.pid!);
  const r = await offer(client, 'a-run', 2400, () => big('conv1'));
  const after = rssMiB(w.p.proc.pid!);
  t.is(r.error?.code, grpc.status.FAILED_PRECONDITION, String(r.error));
  t.regex(r.error!.details, /not configured: call Configure first/);
  t.true(r.ms < 60_000, `refused in ${r.ms.toFixed(0)} ms`);
  t.true(r.pulled < 200, `the client got to write ${r.pulled} of 2,400 messages before the refusal`);
  t.true(after - before < 64, `worker RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB`);
  t.log(`refused after ${r.pulled} messages offered, ${r.ms.toFixed(0)} ms; worker RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB`);
  t.is((await client.status()).state, 'IDLE');
});

test('SetParameters on a configured worker: a misshapen stream of 1.2 GB and one longer than the tower are refused at the first wrong message, memory flat; the run is untouched', async (t) => {
  const { c, pids } = await configured(t);
  const client = c.clients[1];
  const before = rssMiB(pids[1]);
  const misshapen = await offer(client, c.runId, 2400, () => big('conv1'));
  t.is(misshapen.error?.code, grpc.status.INVALID_ARGUMENT, String(misshapen.error));
  t.regex(misshapen.error!.details, /^conv1\.w: tensor shape \[131072\] where \[\d+,3,\d+,\d+\] was expected$/);
  t.true(misshapen.ms < 60_000 && misshapen.pulled < 200, `refused after ${misshapen.pulled} messages, ${misshapen.ms.toFixed(0)} ms`);
  // every tensor of the tower, then conv1's weights again and again: refused at the first repeat
  const own = await client.parameters(true);
  const whole: ParameterTensor[] = [];
  for (const l of towerParamLayers(spec, 1)) {
    const p = own.get(l.name)!;
    for (const kind of ['w', 'b', 'vw', 'vb'] as const) whole.push({ layer: l.name, kind, tensor: { shape: kind.endsWith('w') ? [...l.shape] : [l.shape[0]!], data: Buffer.from(p[kind]!.buffer) }, step: 0 });
  }
  const longer = await offer(client, c.runId, 100_000, (i) => whole[i % whole.length]!);
  t.is(longer.error?.code, grpc.status.INVALID_ARGUMENT);
  t.regex(longer.error!.details, /^conv1\.w: a second conv1\.w tensor in one stream$/);
  // small messages: the client's buffers and the flow-control window hold a few thousand before the refusal reaches it
  t.true(longer.pulled < 10_000 && longer.ms < 60_000, `refused after ${longer.pulled} of 100,000 messages, ${longer.ms.toFixed(0)} ms`);
  // chunks out of order, and values that are not finite: refused by the message that has them
  const gap = await offer(client, c.runId, 2, (i) => ({ layer: 'conv1', kind: 'w', tensor: { shape: [1, ...towerParamLayers(spec, 1)[0]!.shape.slice(1)], data: Buffer.from(own.get('conv1')!.w.slice(0, own.get('conv1')!.w.length / towerParamLayers(spec, 1)[0]!.shape[0]!).buffer) }, step: 0, row_offset: i * 2, total_rows: towerParamLayers(spec, 1)[0]!.shape[0]! }));
  t.regex(String(gap.error?.details), /^conv1\.w: a chunk at row 2 where row 1 was next/);
  const after = rssMiB(pids[1]);
  t.true(after - before < 64, `worker RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB`);
  t.log(`misshapen: refused after ${misshapen.pulled} messages, ${misshapen.ms.toFixed(0)} ms; too long: after ${longer.pulled}; worker RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB`);
  // nothing changed: the worker still trains from its own initialisation
  t.deepEqual(await client.parameters(true), own);
  t.is((await c.step(await new SyntheticSource(spec, 3).batch(0, 4))).step, 0);
});

test("a tower's parameters go to and come from only the run that configured it: another run id, or none from another connection, is refused and changes nothing", async (t) => {
  const { c } = await configured(t);
  const client = c.clients[0];
  const own = await client.parameters(true);
  // a coordinator older than feature "parameters-run-id" names no run: taken on the connection that configured the run
  const older = await collectStream<GetParametersRequest, ParameterTensor>(client.client, 'GetParameters', { include_momentum: true, run_id: '' });
  t.is(older.length, towerParamLayers(spec, 0).length * 4);
  const { WorkerClient } = await import('@alexnet-mp/worker');
  const stranger = new WorkerClient(c.o.workers[0], 8 << 20);
  t.teardown(() => stranger.close());
  for (const [who, runId] of [[client, '20261206T000000Z-someone-else'], [stranger, '20261206T000000Z-someone-else'], [stranger, '']] as const) {
    const read = await t.throwsAsync(collectStream<GetParametersRequest, ParameterTensor>(who.client, 'GetParameters', { include_momentum: true, run_id: runId }));
    t.is((read as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
    t.regex((read as grpc.ServiceError).details, runId ? /^run 20261206T000000Z-someone-else is not the configured run \d{8}T\d{6}Z-…$/ : /^GetParameters names no run: send the configured run's id \(run_id; a coordinator older than this worker sends none: update it\)$/);
    const shapes = new Map(towerParamLayers(spec, 0).map((l) => [l.name, [...l.shape]]));
    const zeros = new Map([...own].map(([k, p]) => [k, { w: p.w.map(() => 0), b: p.b.map(() => 0), vw: p.w.map(() => 0), vb: p.b.map(() => 0) }]));
    const write = await t.throwsAsync(who.setParameters(zeros, shapes, 5, { runId }));
    t.is((write as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
    t.regex((write as grpc.ServiceError).details, runId ? /^run 20261206T000000Z-someone-else is not the configured run / : /^SetParameters names no run/);
  }
  // the configured run still reads its own parameters, unchanged, and steps from step 0
  t.deepEqual(await client.parameters(true), own);
  t.is((await c.step(await new SyntheticSource(spec, 3).batch(0, 4))).step, 0);
});

test('GetParameters in chunks of at most max_chunk_bytes (whole rows) puts back together exactly; SetParameters takes chunks and GetParameters returns them', async (t) => {
  const { c } = await configured(t);
  for (const tw of [0, 1] as const) {
    const client = c.clients[tw];
    const whole = await client.parameters(true);
    const msgs = await collectStream<GetParametersRequest, ParameterTensor>(client.client, 'GetParameters', { include_momentum: true, max_chunk_bytes: 200, run_id: c.runId });
    const layers = towerParamLayers(spec, tw);
    t.true(msgs.length > layers.length * 4, `${msgs.length} messages for ${layers.length * 4} tensors`);
    for (const m of msgs) {
      const rowBytes = m.tensor.data.length / m.tensor.shape[0]!;
      t.true(m.tensor.data.length <= Math.max(200, rowBytes), `${m.layer}.${m.kind} rows ${m.row_offset}..: ${m.tensor.data.length} bytes`);
      t.is(m.total_rows, layers.find((l) => l.name === m.layer)!.shape[0]);
    }
    const back = assembleParameters(msgs);
    for (const [layer, p] of whole) for (const kind of ['w', 'b', 'vw', 'vb'] as const) t.deepEqual(back.get(layer)?.get(kind), p[kind], `tower ${tw} ${layer}.${kind}`);
    // by default no tensor of tiny is over the chunk size: one message each, whole, as older workers send them
    const plain = await collectStream<GetParametersRequest, ParameterTensor>(client.client, 'GetParameters', { include_momentum: true, run_id: c.runId });
    t.is(plain.length, layers.length * 4);
    t.true(plain.every((m) => m.row_offset === 0 && m.tensor.data.length <= DEFAULT_CHUNK_BYTES));
  }
  // a resumed run's parameters sent in chunks of 200 bytes, read back in chunks of 100 (the first run lets the workers go: Release)
  const scaled = new Map([...(await c.clients[0].parameters(true))].map(([k, p]) => [k, { w: p.w.map((x) => x * 2), b: p.b.map((x) => x + 1), vw: p.w.map((x) => x / 3), vb: p.b.map((x) => -x) }]));
  await c.release();
  const d = new Coordinator({ spec, workers: c.o.workers, batch: 4, seed: 5, hyper, source: new SyntheticSource(spec, 5) });
  t.teardown(() => d.close());
  await d.start();
  const shapes = new Map(towerParamLayers(spec, 0).map((l) => [l.name, [...l.shape]]));
  const reply = await d.clients[0].setParameters(scaled, shapes, 9, { chunkBytes: 200 });
  t.deepEqual({ step: reply.step, tensors: reply.tensors }, { step: 9, tensors: shapes.size * 4 });
  const got = await d.clients[0].parameters(true, { maxChunkBytes: 100 });
  for (const [layer, p] of scaled) t.deepEqual(got.get(layer), p, layer);
});

test('paper preset: fc6 weights (72 MiB on a tower) reach a client with gRPC default limits (4 MiB) in chunks of 1 MiB', async (t) => {
  const paper = getPreset('paper');
  const t0 = performance.now();
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--preset', 'paper', '--max-batch', '1']), startWorker(t, 1, ['--preset', 'paper', '--max-batch', '1'])]);
  const c = new Coordinator({ spec: paper, workers: [w0.address, w1.address], batch: 1, seed: 2, hyper, source: new SyntheticSource(paper, 2) });
  t.teardown(() => c.close());
  await c.start({ timeoutMs: 120_000 });
  const started = performance.now();
  // a client as any gRPC library makes it: default options, 4 MiB receive limit
  const plain = new (protocol().Worker)(w0.address, grpc.credentials.createInsecure());
  t.teardown(() => plain.close());
  const msgs = await collectStream<GetParametersRequest, ParameterTensor>(plain, 'GetParameters', { include_momentum: false, layers: ['fc6'], run_id: c.runId });
  const fc6 = towerParamLayers(paper, 0).find((l) => l.name === 'fc6')!;
  const w = assembleParameters(msgs).get('fc6')!.get('w')!;
  t.is(w.length, fc6.shape.reduce((a, b) => a * b, 1));
  t.true(msgs.every((m) => m.tensor.data.length <= DEFAULT_CHUNK_BYTES), 'every message at most 1 MiB of data');
  t.true(msgs.length > 70, `${msgs.length} messages`);
  // the same floats as the coordinator's own client reads (raised limits, chunks put back together)
  const theirs = (await c.clients[0].parameters(false)).get('fc6')!.w;
  t.true(Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(Buffer.from(theirs.buffer, theirs.byteOffset, theirs.byteLength)));
  t.log(`paper workers configured in ${((started - t0) / 1000).toFixed(1)} s; fc6 in ${msgs.length} messages, ${((performance.now() - started) / 1000).toFixed(1)} s`);
});
