/**
 * Bad input sent to the workers of a running job, in the middle of it: each
 * kind is refused with the status and message it should get, the workers stay
 * READY, and the steps after it give exactly the losses of the same run
 * without the bad calls (same workers, configured again with the same seed).
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { tiny, towerParamLayers, type SgdHyper } from '@alexnet-mp/core';
import {
  ExchangeStream,
  crossingShape,
  encodeTensor,
  maxMessageBytes,
  protocol,
  unary,
  type EvalExchangeRequest,
  type EvaluateRequest,
  type ExchangeRequest,
  type HandshakeRequest,
  type StepRequest,
} from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';
import { reservedPort } from './ports.js';

const B = 4;
const SEED = 11;
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
const S = tiny.inputSize;
const C = tiny.inputChannels;

/** A refusal: its status code and a pattern its message must match. */
async function refused(t: import('ava').ExecutionContext, what: string, call: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  const e = await t.throwsAsync(call, undefined, `${what} was taken`);
  const err = e as grpc.ServiceError;
  t.is(err.code, code, `${what}: ${grpc.status[err.code]}: ${err.details}`);
  t.regex(err.details, message, what);
  t.log(`${what}: ${grpc.status[err.code]}: ${err.details}`);
}

/** A unary call with the request given as raw bytes (no protobuf encoding). */
function rawCall(address: string, path: string, bytes: Buffer): Promise<Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(path, (x: Buffer) => x, (b: Buffer) => b, bytes, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!);
    });
  });
}

test('bad input in the middle of a run is refused (INVALID_ARGUMENT, malformed, over-size, another run) and the run goes on unharmed', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const workers = [w0.address, w1.address] as const;
  const source = new SyntheticSource(tiny, SEED);
  const losses = async (c: Coordinator, from: number, to: number): Promise<number[]> => {
    const out: number[] = [];
    for (let s = from; s < to; s++) out.push((await c.step(await source.batch(s, B))).loss);
    return out;
  };

  // ---- the run, with bad calls after Configure and after step 2
  const c = new Coordinator({ spec: tiny, workers, batch: B, seed: SEED, hyper, source });
  t.teardown(() => c.close());
  await c.start();
  const run = c.runId;
  const [worker0, worker1] = c.clients;

  // SetParameters (only right after Configure): a misshapen tensor, a NaN; nothing is changed
  const params = (await worker1.parameters(true)) as Map<string, { w: Float32Array; b: Float32Array; vw: Float32Array; vb: Float32Array }>;
  const shapes = new Map(towerParamLayers(tiny, 1).map((l) => [l.name, [...l.shape]]));
  const [first] = towerParamLayers(tiny, 1);
  const wrongShapes = new Map(shapes);
  wrongShapes.set(first!.name, [first!.shape[0], first!.shape[1] * first!.shape[2], first!.shape[3], 1]);
  await refused(t, 'SetParameters with a misshapen tensor', worker1.setParameters(params, wrongShapes, 0), grpc.status.INVALID_ARGUMENT, new RegExp(`${first!.name}\\.w: tensor shape \\[.*\\] where \\[${first!.shape.join(',')}\\] was expected`));
  const poisoned = new Map(params);
  const vw = Float32Array.from(params.get(first!.name)!.vw);
  vw[5] = Number.NaN;
  poisoned.set(first!.name, { ...params.get(first!.name)!, vw });
  await refused(t, 'SetParameters with a NaN', worker1.setParameters(poisoned, shapes, 0), grpc.status.INVALID_ARGUMENT, new RegExp(`${first!.name}\\.vw: value NaN at index 5, expected finite numbers`));

  const before = await losses(c, 0, 2);

  const batch2 = await source.batch(2, B);
  const images = batch2.images;
  const labels = Array.from(batch2.labels);
  const good: StepRequest = { run_id: run, step: 2, images, labels, hyper: { lr: 0.01, momentum: 0.9, weight_decay: 0.0005 } };
  await refused(t, 'Step with an image too few', worker0.step({ ...good, images: images.subarray(0, C * (B - 1) * S * S) }), grpc.status.INVALID_ARGUMENT, new RegExp(`Step images: ${C * (B - 1) * S * S} bytes, expected ${C * B * S * S} \\(uint8 \\[3\\]\\[4\\]\\[${S}\\]\\[${S}\\]`));
  await refused(t, 'Step with a byte too many', worker1.step({ ...good, images: new Uint8Array(C * B * S * S + 1) }), grpc.status.INVALID_ARGUMENT, /Step images: \d+ bytes, expected \d+/);
  await refused(t, 'Step with a label out of range', worker0.step({ ...good, labels: [0, 1, tiny.classes, 0] }), grpc.status.INVALID_ARGUMENT, new RegExp(`Step labels: label ${tiny.classes} of image 2 is out of range: preset tiny has ${tiny.classes} classes \\(0\\.\\.${tiny.classes - 1}\\)`));
  await refused(t, 'Step with labels missing', worker0.step({ ...good, labels: labels.slice(1) }), grpc.status.INVALID_ARGUMENT, /Step labels: 3, expected 4/);
  await refused(t, 'Step with a NaN learning rate', worker1.step({ ...good, hyper: { ...good.hyper, lr: Number.NaN } }), grpc.status.INVALID_ARGUMENT, /Step hyper: lr NaN, expected a finite number >= 0/);
  await refused(t, 'Step of another run', worker0.step({ ...good, run_id: 'someone-else' }), grpc.status.FAILED_PRECONDITION, /run someone-else is not the configured run/);

  const evalReq: EvaluateRequest = { run_id: run, evaluation: 0, step: 2, images, labels };
  await refused(t, 'Evaluate with half an image', worker0.evaluate({ ...evalReq, images: images.subarray(0, C * S * S + 7) }), grpc.status.INVALID_ARGUMENT, /image bytes: expected uint8 \[3\]\[N\]/);
  await refused(t, 'Evaluate with a label out of range', worker0.evaluate({ ...evalReq, labels: [0, 0, 0, 99] }), grpc.status.INVALID_ARGUMENT, /Evaluate labels: label 99 of image 3 is out of range/);

  const handshake: HandshakeRequest = { model: c.identity, tower: 0, peer_address: workers[1], run_id: 'x\nrefused handshake for run y' };
  await refused(t, 'Handshake with a control character in the run id', worker0.handshake(handshake), grpc.status.INVALID_ARGUMENT, /run id "x\\nrefused.*" is not 1\.\.128 printable ASCII/);

  // the Peer service: what another worker (or a stranger) could send
  const peer = new (protocol().Peer)(workers[1], grpc.credentials.createInsecure());
  t.teardown(() => peer.close());
  const pool2 = encodeTensor([2, B, 1, 1], new Float32Array(2 * B));
  const ex: ExchangeRequest = { run_id: run, step: 2, point: 'pool2', direction: 'FORWARD', from_tower: 0, tensor: pool2 };
  // one Exchange call a tensor, and the same tensors on one Peer.Stream (refused in its acknowledgements, the stream staying open)
  const stream = new ExchangeStream(peer);
  t.teardown(() => stream.close());
  const signal = new AbortController().signal;
  for (const [via, send] of [
    ['Exchange', (r: ExchangeRequest) => unary(peer, 'Exchange', r)],
    ['Stream', (r: ExchangeRequest) => stream.send(r, 30_000, signal)],
  ] as const) {
    await refused(t, `${via} of a misshapen tensor`, send(ex), grpc.status.INVALID_ARGUMENT, /pool2 forward: tensor shape \[2,4,1,1\] where \[\d+,4,\d+,\d+\] was expected/);
    await refused(t, `${via} whose bytes do not fit its shape`, send({ ...ex, tensor: { shape: crossingShape(tiny, 'pool2', B), data: Buffer.alloc(3) } }), grpc.status.INVALID_ARGUMENT, /pool2 forward: tensor of shape \[\d+,4,\d+,\d+\] has 3 bytes, expected \d+/);
    await refused(t, `${via} from another run`, send({ ...ex, run_id: 'another-run' }), grpc.status.FAILED_PRECONDITION, /tower 1 is not configured for run another-run/);
    await refused(t, `${via} claiming to be from tower 1`, send({ ...ex, from_tower: 1 }), grpc.status.INVALID_ARGUMENT, /a tensor from tower 1 reached tower 1/);
    await refused(t, `${via} at no crossing point`, send({ ...ex, point: 'conv9' }), grpc.status.INVALID_ARGUMENT, /no crossing point conv9/);
    // (the next step's tensors are taken: with steps queued, the peer may start it first)
    await refused(t, `${via} of a tensor for a step after the next`, send({ ...ex, step: 4 }), grpc.status.FAILED_PRECONDITION, /a tensor for step 4 reached tower 1 at step 2 \(it takes steps 2 and 3\)/);
    await refused(t, `${via} of a tensor for a step done`, send({ ...ex, step: 1 }), grpc.status.FAILED_PRECONDITION, /a tensor for step 1 reached tower 1 at step 2/);
  }
  t.is(stream.opened, 1, 'the refusals left the stream open');
  const evx: EvalExchangeRequest = { run_id: run, evaluation: 0, point: 'pool2', from_tower: 0, batch: B + 1, tensor: pool2 };
  await refused(t, 'EvalExchange with a batch over --max-batch', unary(peer, 'EvalExchange', evx), grpc.status.INVALID_ARGUMENT, new RegExp(`evaluation batch ${B + 1} is outside 1\\.\\.${B}`));
  await refused(t, 'EvalExchange from another run', unary(peer, 'EvalExchange', { ...evx, run_id: 'another-run', batch: B }), grpc.status.FAILED_PRECONDITION, /not configured for run another-run/);

  // malformed protobuf: what protobufjs cannot decode (a varint cut short, a length past the end) grpc-js refuses
  // before any handler; what it decodes leniently (it does not check wire types, a string's length may overrun
  // the message) reaches the handler as fields, and is refused there as any other wrong request
  const truncatedVarint = Buffer.from([0x10, 0xff]);
  const overlongVarint = Buffer.from([0x1a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  const lenientString = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x41]);
  const cases: [string, string, Buffer, grpc.status, RegExp][] = [
    [workers[0], '/alexnet.v1.Worker/Step', truncatedVarint, grpc.status.INTERNAL, /Error deserializing request/],
    [workers[0], '/alexnet.v1.Worker/Configure', overlongVarint, grpc.status.INTERNAL, /Error deserializing request/],
    [workers[1], '/alexnet.v1.Peer/Exchange', truncatedVarint, grpc.status.INTERNAL, /Error deserializing request/],
    [workers[1], '/alexnet.v1.Peer/EvalExchange', overlongVarint, grpc.status.INTERNAL, /Error deserializing request/],
    [workers[0], '/alexnet.v1.Worker/Step', lenientString, grpc.status.FAILED_PRECONDITION, /run A is not the configured run/],
    [workers[1], '/alexnet.v1.Peer/Exchange', lenientString, grpc.status.FAILED_PRECONDITION, /not configured for run A/],
    // an empty message: every field at its default, the model identity absent
    [workers[1], '/alexnet.v1.Peer/Hello', Buffer.alloc(0), grpc.status.INVALID_ARGUMENT, /Peer\.Hello without the caller's model/],
  ];
  for (const [address, path, bytes, code, re] of cases) await refused(t, `malformed ${path} [${[...bytes].map((x) => x.toString(16)).join(' ')}]`, rawCall(address, path, bytes), code, re);

  // over-size: the worker's receive limit follows its preset and --max-batch
  const limit = maxMessageBytes(tiny, B);
  const Worker = protocol().Worker;
  const huge = new Worker(workers[0], grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
  t.teardown(() => huge.close());
  await refused(t, `Step of ${limit + 1} image bytes`, unary(huge, 'Step', { ...good, images: new Uint8Array(limit + 1) }), grpc.status.RESOURCE_EXHAUSTED, /larger than max/);
  const hugePeer = new (protocol().Peer)(workers[1], grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
  t.teardown(() => hugePeer.close());
  const hugeStream = new ExchangeStream(hugePeer);
  const hugeTensor = { shape: [limit / 4 + 1], data: Buffer.alloc(limit + 4) };
  await refused(t, `Stream of a ${limit + 4}-byte tensor`, hugeStream.send({ ...ex, tensor: hugeTensor }, 30_000, signal), grpc.status.RESOURCE_EXHAUSTED, /the exchange stream failed: .*larger than max/);

  // both workers are still READY at step 2, without an error
  for (const w of c.clients) {
    const st = await w.status();
    t.is(st.state, 'READY', `tower ${st.tower}: ${st.last_error}`);
    t.is(st.steps_done, 2);
    t.is(st.last_error, '');
  }
  const after = await losses(c, 2, 4);

  // ---- the same run without the bad calls, on the same workers (the first run lets them go: Release)
  await c.release();
  const clean = new Coordinator({ spec: tiny, workers, batch: B, seed: SEED, hyper, source });
  t.teardown(() => clean.close());
  await clean.start();
  const reference = await losses(clean, 0, 4);
  t.log(`losses with bad calls ${[...before, ...after].map((l) => l.toFixed(6)).join(' ')}; without ${reference.map((l) => l.toFixed(6)).join(' ')}`);
  t.deepEqual([...before, ...after], reference, 'the bad calls changed nothing');
});

test("a worker whose --peer does not answer: the run is refused naming that worker's --peer, not reported as a lost worker", async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--peer', '127.0.0.1:1', '--connect-timeout', '2']), startWorker(t, 1)]);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 1, hyper, source: new SyntheticSource(tiny, 1) });
  t.teardown(() => c.close());
  const e = await t.throwsAsync(c.start());
  // the wait ran out; one quick call says why (connection refused), rather than a bare deadline
  t.regex(String(e?.message), /^worker 0 \(tower 0\) at \S+ could not reach its peer: peer at 127\.0\.0\.1:1 did not answer: nothing listens there \(.*ECONNREFUSED.*\); check worker 0's --peer \(without it, the address of worker 1 in --workers must reach it from worker 0's machine\)$/);
  t.is(e?.name, 'UserError');
});

test("a worker whose --peer reaches another worker of the right tower (an idle one, not in --workers): refused at Configure naming that --peer, not a failed first step retried", async (t) => {
  const stray = await startWorker(t, 1);
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--peer', stray.address]), startWorker(t, 1)]);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 1, hyper, source: new SyntheticSource(tiny, 1) });
  t.teardown(() => c.close());
  const e = await t.throwsAsync(c.start());
  t.is(e?.name, 'UserError');
  t.is(e?.message, `worker 0 (tower 0) at ${w0.address} reaches another tower 1 worker at its peer address ${stray.address} than worker 1 (tower 1) at ${w1.address}: check worker 0's --peer (it must reach the worker at ${w1.address} in --workers)`);
});

test("a worker whose --peer is its own address: the refusal says so, not that both workers are one tower", async (t) => {
  // the worker must know its own port before it listens: one from below the ephemeral range (test/ports.ts), tried
  // again with another should something have bound it meanwhile
  const selfPeered = async (tries: number): Promise<Awaited<ReturnType<typeof startWorker>>> => {
    const port = await reservedPort();
    try {
      return await startWorker(t, 0, ['--port', String(port), '--peer', `127.0.0.1:${port}`]);
    } catch (e) {
      if (tries > 1 && /the port is in use/.test(String((e as Error).message))) return selfPeered(tries - 1);
      throw e;
    }
  };
  const w0 = await selfPeered(5);
  const w1 = await startWorker(t, 1);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 1, hyper, source: new SyntheticSource(tiny, 1) });
  t.teardown(() => c.close());
  const e = await t.throwsAsync(c.start());
  t.regex(String(e?.message), /a worker of tower 0 said hello to this worker, of tower 0: its --peer points at this worker's address \(give each worker the other's\), or both workers are tower 0/);
});

test('a coordinator with a token warns about workers that check none (their handshake says what they check)', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const said: string[] = [];
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 1, hyper, source: new SyntheticSource(tiny, 1), security: { token: 'a-token-of-at-least-16-chars' }, info: (l) => said.push(l) });
  t.teardown(() => c.close());
  await c.start();
  // the two handshakes run at once: their lines come in either order
  t.deepEqual(
    said.filter((l) => l.startsWith('warning:')).sort(),
    [0, 1].map((i) => `warning: worker ${i} (tower ${i}) at ${[w0, w1][i]!.address} checks no token or certificate: anyone who reaches ${[w0, w1][i]!.address} can drive it (start it with --token-file FILE, the same token as here, or --tls DIR)`),
  );
});
