/**
 * The protocol as documented is the protocol on the wire: proto/README.md's "Tensor shapes" table is parsed,
 * its expressions are the ones the comments of alexnet/v1/*.proto state for each Tensor field, and every tensor
 * two real workers send in a run (crossings recorded by a Peer proxy between them, replies to the caller) has
 * the documented shape. The crossings of a step and of an evaluation are the cells of the README's tables, and
 * the comments that list features and input scales list what the code uses.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import * as grpc from '@grpc/grpc-js';
import { getPreset, planModel, presets, towerParamLayers } from '@alexnet-mp/core';
import {
  FEATURES,
  PROTOCOL_VERSION,
  WorkerClient,
  collectStream,
  maxMessageBytes,
  modelIdentity,
  protoFiles,
  protoRoot,
  protocol,
  sizeLimitOptions,
  unary,
  unaryHandler,
  type EvalExchangeRequest,
  type ExchangeRequest,
  type GetActivationsReply,
  type GetActivationsRequest,
  type GetParametersRequest,
  type ParameterTensor,
} from '@alexnet-mp/worker';
import { SyntheticSource } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const spec = getPreset('tiny');
const readme = fs.readFileSync(path.join(protoRoot, 'README.md'), 'utf8');
const B = 4;

/** The rows of a markdown table that follows a heading, as cells. */
function tableAfter(heading: string): string[][] {
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`no "${heading}" in proto/README.md`);
  const lines = readme.slice(at).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const l of lines.slice(first)) {
    if (!l.startsWith('|')) break;
    rows.push(l.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows.slice(2); // header and rule
}

interface ShapeRow {
  field: string;
  kinds: string[] | null;
  expr: string;
}

/** proto/README.md's "Tensor shapes": `Message.field` (kind a, b) | `expression`. */
const shapeRows: ShapeRow[] = tableAfter('## Tensor shapes').map(([field, shape]) => {
  const f = /^`(\w+\.\w+)`(?: \(kind ([\w, ]+)\))?$/.exec(field!);
  const e = /^`([^`]+)`$/.exec(shape!);
  if (!f || !e) throw new Error(`a row of "Tensor shapes" not understood: ${field} | ${shape}`);
  return { field: f[1]!, kinds: f[2] ? f[2].split(',').map((k) => k.trim()) : null, expr: e[1]! };
});

/**
 * A documented shape for these values of its symbols: "[C, N, H, W], or [C, N] when H = W = 1" is the
 * alternative whose condition holds, else the one without a condition.
 */
function evalShape(expr: string, env: Record<string, number>): number[] {
  const alts = expr.split(', or ').map((a) => {
    const m = /^\[([^\]]+)\](?: when ([\w =]+))?$/.exec(a.trim());
    if (!m) throw new Error(`shape expression not understood: ${expr}`);
    return { dims: m[1]!.split(',').map((d) => d.trim()), when: m[2] ?? null };
  });
  const value = (s: string) => {
    if (/^\d+$/.test(s)) return Number(s);
    if (env[s] === undefined) throw new Error(`no value for ${s} in ${expr}`);
    return env[s];
  };
  const holds = (cond: string) => {
    const parts = cond.split('=').map((p) => value(p.trim()));
    return parts.every((p) => p === parts[0]);
  };
  const chosen = alts.find((a) => a.when !== null && holds(a.when)) ?? alts.find((a) => a.when === null)!;
  return chosen.dims.map(value);
}

const rowFor = (field: string, kind?: string): ShapeRow => {
  const r = shapeRows.find((x) => x.field === field && (x.kinds === null || x.kinds.includes(kind!)));
  if (!r) throw new Error(`no documented shape for ${field}${kind ? ` (kind ${kind})` : ''}`);
  return r;
};

/** The documented shape of one tower's output of a layer of tiny for n images. */
function activation(field: string, layer: string, n: number): number[] {
  const p = planModel(spec).find((q) => q.layer.name === layer)!;
  return evalShape(rowFor(field).expr, { C: p.outShape.c, H: p.outShape.h, W: p.outShape.w, N: n });
}

/** The .proto files with their comments (every `//` comment block is its field's or message's). */
function protoWithComments(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoRoot, target));
  root.loadSync(protoFiles, { keepCase: true, alternateCommentMode: true });
  root.resolveAll();
  return root;
}

test('every Tensor field of alexnet.v1 is in the "Tensor shapes" table, and its comment states the same shape', (t) => {
  const root = protoWithComments();
  const pkg = root.lookup('alexnet.v1') as protobuf.Namespace;
  const tensorFields: string[] = [];
  for (const m of pkg.nestedArray) {
    if (!(m instanceof protobuf.Type)) continue;
    for (const f of m.fieldsArray) if (f.resolvedType?.fullName === '.alexnet.v1.Tensor') tensorFields.push(`${m.name}.${f.name}`);
  }
  t.deepEqual([...new Set(shapeRows.map((r) => r.field))].sort(), tensorFields.sort(), 'the table has a row for each Tensor field, no more');
  for (const r of shapeRows) {
    const [msg, field] = r.field.split('.');
    const comment = (root.lookupType(`alexnet.v1.${msg}`).fields[field!]!.comment ?? '').replace(/\s+/g, ' ');
    t.true(comment.includes(`\`${r.expr}\``), `${r.field}'s comment says \`${r.expr}\`: ${comment}`);
  }
  t.deepEqual(evalShape(rowFor('ExchangeRequest.tensor').expr, { C: 4, N: 8, H: 1, W: 1 }), [4, 8], 'the 1 x 1 case');
  t.deepEqual(evalShape(rowFor('ExchangeRequest.tensor').expr, { C: 8, N: 8, H: 3, W: 3 }), [8, 8, 3, 3]);
});

test('the comments that list features and input scales list what the code uses', (t) => {
  const root = protoWithComments();
  const features = root.lookupType('alexnet.v1.HandshakeReply').fields.features!.comment!;
  t.deepEqual([...features.matchAll(/"([a-z-]+)"/g)].map((m) => m[1]).sort(), [...FEATURES].sort(), 'HandshakeReply.features');
  const readmeFeatures = readme.slice(readme.indexOf('**Additions within v1.**'), readme.indexOf('- **A field added within v1'));
  for (const f of FEATURES) t.true(readmeFeatures.includes(`\`"${f}"\``), `proto/README.md lists "${f}"`);
  // "1 for paper (...); 64 for cifar and tiny": every preset named once, with its scale
  for (const [where, text] of [
    ['ConfigureRequest.input_mean', root.lookupType('alexnet.v1.ConfigureRequest').fields.input_mean!.comment!],
    ['proto/README.md, Images', readme.slice(readme.indexOf('- **Images**'), readme.indexOf('- **Errors**'))],
  ] as const) {
    const flat = text.replace(/\s+/g, ' ');
    const said = new Map<string, number>();
    for (const m of flat.matchAll(/(\d+) for ((?:paper|cifar|tiny)(?: and (?:paper|cifar|tiny))*)/g)) for (const name of m[2]!.split(' and ')) said.set(name, Number(m[1]));
    t.deepEqual(Object.fromEntries(said), Object.fromEntries(Object.entries(presets).map(([n, s]) => [n, s.inputScale])), `${where}: ${flat}`);
  }
});

interface Recorded {
  method: 'Exchange' | 'EvalExchange';
  req: ExchangeRequest | EvalExchangeRequest;
}

/** A Peer service that records each call and forwards it to the worker at `target`. */
async function recordingPeer(target: string, log: Recorded[]): Promise<{ address: string; close(): void }> {
  const { Peer } = protocol();
  const limits = sizeLimitOptions(maxMessageBytes(spec, 256));
  const client = new Peer(target, grpc.credentials.createInsecure(), limits);
  const server = new grpc.Server(limits);
  const forward = (method: string) =>
    unaryHandler<ExchangeRequest | EvalExchangeRequest, unknown>(async (req) => {
      if (method !== 'Hello') log.push({ method: method as Recorded['method'], req });
      return unary(client, method, req);
    });
  server.addService(Peer.service, { Hello: forward('Hello'), Exchange: forward('Exchange'), EvalExchange: forward('EvalExchange') });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return {
    address: `127.0.0.1:${port}`,
    close: () => {
      server.forceShutdown();
      client.close();
    },
  };
}

/** "What crosses, exactly" / "An evaluation": the (point, direction, from tower) cells that are not "nothing". */
function crossingCells(heading: string, phase: 'step' | 'eval'): string[] {
  const out: string[] = [];
  const columns = phase === 'step' ? ['FORWARD 0', 'FORWARD 1', 'BACKWARD 0', 'BACKWARD 1'] : ['FORWARD 0', 'FORWARD 1'];
  for (const [point, ...cells] of tableAfter(heading)) {
    columns.forEach((c, i) => {
      if (cells[i] !== 'nothing') out.push(`${point} ${c}`);
    });
  }
  return out.sort();
}

test('a run on two workers: every tensor sent (crossings, logits, activations whole and in chunks, parameters and their chunks) has its documented shape; the crossings are the tables\' cells', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const log: Recorded[] = [];
  // each worker reaches its peer through a recording proxy
  const to1 = await recordingPeer(w1.address, log);
  const to0 = await recordingPeer(w0.address, log);
  t.teardown(() => [to0, to1].forEach((p) => p.close()));
  const workers = [w0, w1].map((w) => new WorkerClient(w.address, maxMessageBytes(spec, 256)));
  t.teardown(() => workers.forEach((w) => w.close()));
  const runId = 'wire-shapes';
  await Promise.all(workers.map((w, tw) => w.handshake({ model: modelIdentity(spec, PROTOCOL_VERSION), tower: tw, peer_address: '', run_id: runId })));
  await Promise.all(workers.map((w, tw) => w.configure({ run_id: runId, batch: B, seed: 5, peer_address: (tw === 0 ? to1 : to0).address, input_mean: [] })));
  const source = new SyntheticSource(spec, 5);
  const hyper = { lr: 0.01, momentum: 0.9, weight_decay: 0.0005, no_bias_decay: true };
  for (const step of [0, 1]) {
    const b = await source.batch(step, B);
    await Promise.all(workers.map((w) => w.step({ run_id: runId, step, images: b.images, labels: [...b.labels], hyper })));
  }
  const N = 3;
  const evalBatch = await source.batch(100, N);
  const evals = await Promise.all(workers.map((w) => w.evaluate({ run_id: runId, evaluation: 0, step: 2, images: evalBatch.images, labels: [...evalBatch.labels] })));

  // the crossings: the documented shape, for the configured batch (steps) or the evaluation's
  const steps = log.filter((r) => r.method === 'Exchange').map((r) => r.req as ExchangeRequest);
  const evalX = log.filter((r) => r.method === 'EvalExchange').map((r) => r.req as EvalExchangeRequest);
  for (const r of steps) t.deepEqual(r.tensor.shape, activation('ExchangeRequest.tensor', r.point, B), `step ${r.step} ${r.point} ${r.direction} from ${r.from_tower}`);
  for (const r of evalX) t.deepEqual(r.tensor.shape, activation('EvalExchangeRequest.tensor', r.point, r.batch), `evaluation ${r.point} from ${r.from_tower}`);
  t.true(steps.some((r) => r.point === 'pool5' && r.tensor.shape.length === 2), 'tiny\'s pool5 (1 x 1) crossed as [C, N]');
  // the proxies forward Hello (the workers list "exchange-stream") but serve no Peer.Stream: the workers fall back to Exchange
  for (const w of [w0, w1]) t.regex(w.p.output(), /does not serve Peer\.Stream \(UNIMPLEMENTED.*\): sending one Exchange call a tensor/);
  for (const step of [0, 1]) {
    const cells = steps.filter((r) => r.step === step).map((r) => `${r.point} ${r.direction} ${r.from_tower}`);
    t.deepEqual(cells.sort(), crossingCells('### What crosses, exactly', 'step'), `step ${step}: what crossed`);
  }
  t.deepEqual(evalX.map((r) => `${r.point} FORWARD ${r.from_tower}`).sort(), crossingCells('## An evaluation, on tower t', 'eval'));
  t.is(evalX.filter((r) => r.from_tower === 0).length, 3, 'worker 0 sends 3 messages and receives 4');
  t.is(evalX.filter((r) => r.from_tower === 1).length, 4);

  // logits: [classes, N] on tower 0, none on tower 1
  t.deepEqual(evals[0].logits?.shape, evalShape(rowFor('EvaluateReply.logits').expr, { classes: spec.classes, N }));
  t.is(evals[1].logits, null);

  // activations of every layer, both towers (each call an evaluation of its own)
  let evaluation = 1;
  const act = await source.batch(200, 2);
  for (const l of spec.layers) {
    const replies = await Promise.all(workers.map((w) => unary<GetActivationsRequest, GetActivationsReply>(w.client, 'GetActivations', { run_id: runId, evaluation, step: 2, images: act.images, layer: l.name })));
    evaluation++;
    for (const r of replies) {
      if (!r.has_activations) continue;
      t.deepEqual(r.activations!.shape, activation('GetActivationsReply.activations', l.name, 2), `${l.name} on tower ${r.tower}`);
    }
  }
  // the same in chunks of at most 64 bytes (StreamActivations): each chunk has the documented shape with C its
  // rows, the first has the timing, and put together they are GetActivations' reply
  for (const layer of ['conv1', 'pool5', 'fc6', 'fc8']) {
    const req = (e: number, max_chunk_bytes = 0): GetActivationsRequest => ({ run_id: runId, evaluation: e, step: 2, images: act.images, layer, max_chunk_bytes });
    const whole = await Promise.all(workers.map((w) => unary<GetActivationsRequest, GetActivationsReply>(w.client, 'GetActivations', req(evaluation))));
    const parts = await Promise.all(workers.map((w) => collectStream<GetActivationsRequest, GetActivationsReply>(w.client, 'StreamActivations', req(evaluation + 1, 64))));
    evaluation += 2;
    for (const [tw, msgs] of parts.entries()) {
      const full = whole[tw]!;
      if (!full.has_activations) {
        t.is(msgs.length, 1, `${layer} on tower ${tw}: one message`);
        t.false(msgs[0]!.has_activations);
        continue;
      }
      const p = planModel(spec).find((q) => q.layer.name === layer)!;
      let rows = 0;
      const data: Buffer[] = [];
      for (const m of msgs) {
        const c = m.activations!.shape[0]!;
        t.deepEqual(m.activations!.shape, evalShape(rowFor('GetActivationsReply.activations').expr, { C: c, H: p.outShape.h, W: p.outShape.w, N: 2 }), `${layer} tower ${tw} rows ${m.row_offset}`);
        t.is(m.row_offset, rows);
        t.is(m.total_rows, p.outShape.c);
        t.true(m.activations!.data.length <= Math.max(64, m.activations!.data.length / c));
        rows += c;
        data.push(m.activations!.data);
      }
      const rowBytes = full.activations!.data.length / p.outShape.c;
      t.is(msgs.length, Math.ceil(p.outShape.c / Math.max(1, Math.floor(64 / rowBytes))), `${layer} tower ${tw}: rows of ${rowBytes} bytes in messages of at most 64`);
      t.true(msgs[0]!.timing !== null && msgs.slice(1).every((m) => m.timing === null), `${layer} tower ${tw}: timing in the first message only`);
      t.true(Buffer.concat(data).equals(full.activations!.data), `${layer} tower ${tw}: the chunks are GetActivations' reply`);
    }
  }
  const unknown = await t.throwsAsync(collectStream<GetActivationsRequest, GetActivationsReply>(workers[0]!.client, 'StreamActivations', { run_id: runId, evaluation, step: 2, images: act.images, layer: 'conv9' }));
  t.regex(String(unknown?.message), /^3 INVALID_ARGUMENT: no layer "conv9" in preset tiny/);
  t.is((await workers[0]!.status()).state, 'READY');
  for (const r of log.filter((x) => x.method === 'EvalExchange').map((x) => x.req as EvalExchangeRequest)) {
    t.deepEqual(r.tensor.shape, activation('EvalExchangeRequest.tensor', r.point, r.batch));
  }

  // parameters: whole and in chunks of at most 100 bytes
  for (const [tw, w] of workers.entries()) {
    for (const max_chunk_bytes of [0, 100]) {
      const msgs = await collectStream<GetParametersRequest, ParameterTensor>(w.client, 'GetParameters', { include_momentum: true, max_chunk_bytes, run_id: runId });
      for (const m of msgs) {
        const l = towerParamLayers(spec, tw as 0 | 1).find((x) => x.name === m.layer)!;
        const [out, inC, kh, kw] = l.shape;
        const rows = m.tensor.shape[0]!;
        t.true(rows >= 1 && m.row_offset! + rows <= out!, `${m.layer}.${m.kind} rows ${m.row_offset}+${rows} of ${out}`);
        t.deepEqual(m.tensor.shape, evalShape(rowFor('ParameterTensor.tensor', m.kind).expr, { rows, out: out!, in: inC!, kh: kh!, kw: kw! }), `tower ${tw} ${m.layer}.${m.kind}`);
        t.is(m.total_rows, out);
        if (max_chunk_bytes === 0) t.is(m.row_offset, 0);
      }
    }
  }
  t.log(`${steps.length} Exchange and ${evalX.length} EvalExchange messages checked`);
});
