/**
 * A step cut into micro-batches (--micro-batches N: the worker's pipeline.ts) against the one-process
 * oracle: real worker processes on loopback, the tiny preset with its dropout, N = 1, 2 and 4 on the same
 * two workers one run after the other; the losses to 1e-5 as the whole-batch run's test
 * (distributed.test.ts) requires them, every weight and momentum to 1e-5 of its tensor's scale (core's
 * scaledError: a step in micro-batches adds each weight gradient in another order, so an element near
 * zero, a momentum that nearly cancelled, can differ by more than 1e-5 of its own value), and the bytes
 * that cross per step unchanged (N times the messages, each 1/N of the tensor).
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { GroupedTrainer, crossingSizes, scaledError, tiny, type SgdHyper, type TowerParams } from '@alexnet-mp/core';
import { inputNormalisation, normaliseImages, trafficTotals, type LayerTensors, type StatusReply } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource, type StepMetrics } from '@alexnet-mp/coordinator';
import { maxRelError, startWorker } from './helpers.js';

const B = 32;
const STEPS = 3;
const SEED = 5;
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.05, decayBiases: true };
const COUNTS = [1, 2, 4] as const;

test.serial('two workers with the steps cut into 1, 2 and 4 micro-batches give the one-process losses, weights and momentum, and the same bytes per step', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const source = new SyntheticSource(tiny, SEED);
  const oracle = await GroupedTrainer.create({ spec: tiny, backend: 'webasm', batch: B, seed: SEED, hyper, fallback: { onFallback: 'throw' } });
  t.teardown(() => oracle.destroy());
  const oracleLosses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const b = await source.batch(s, B);
    oracleLosses.push((await oracle.trainStep({ images: normaliseImages(b.images, inputNormalisation(tiny)), labels: Float32Array.from(b.labels) })).loss);
  }
  const sizes = crossingSizes(tiny, B);
  const [p2, p5, f6, f7] = sizes.map((s) => 4 * s.floats) as [number, number, number, number];
  const perStep = 2 * (2 * (p2 + p5 + f6) + f7);
  for (const n of COUNTS) {
    const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source, microBatches: n });
    await c.start();
    const metrics: StepMetrics[] = [];
    for (let s = 0; s < STEPS; s++) metrics.push(await c.step(await source.batch(s, B)));
    for (const [s, m] of metrics.entries()) {
      t.is(m.micro_batches, n);
      const rel = Math.abs(m.loss - oracleLosses[s]!) / Math.abs(oracleLosses[s]!);
      t.true(rel < 1e-5, `N=${n}, step ${s}: loss ${m.loss} vs ${oracleLosses[s]} (relative error ${rel.toExponential(2)})`);
      t.is(m.crossing_bytes, perStep, `N=${n}, step ${s}: the bytes of a whole step cross`);
      // 7 tensors each way a step, each cut in N
      for (const w of m.workers) t.is(w.messages_sent, 7 * n, `N=${n}, step ${s}, tower ${w.tower}: messages`);
      for (const w of m.workers) t.true(w.exchange_hidden_ms + w.exchange_ms <= w.total_ms + 1e-6, `N=${n}: hidden + waited within the step`);
    }
    let worst = 0;
    let where = '';
    let elementwise = 0;
    for (const tower of [0, 1] as const) {
      const remote = await c.clients[tower].parameters(true);
      for (const [name, lp] of oracle.params[tower]) {
        for (const k of ['w', 'b', 'vw', 'vb'] as const) {
          const e = scaledError(remote.get(name)![k]!, lp[k]);
          if (e > worst) [worst, where] = [e, `tower ${tower} ${name}.${k}`];
          elementwise = Math.max(elementwise, maxRelError(remote.get(name)![k]!, lp[k]));
        }
      }
    }
    const status = (await Promise.all(c.clients.map((x) => x.status()))) as [StatusReply, StatusReply];
    t.true(status.every((st) => st.steps_done === STEPS && st.state === 'READY'));
    t.deepEqual(status.map((st) => trafficTotals(st.last_step_traffic).sent + trafficTotals(st.last_step_traffic).received), [perStep, perStep]);
    t.log(`N=${n}: losses ${metrics.map((m) => m.loss.toFixed(6)).join(' ')} (one process ${oracleLosses.map((l) => l.toFixed(6)).join(' ')}), largest difference of a weight or momentum tensor ${worst.toExponential(2)} of its scale (${where}), of an element ${elementwise.toExponential(2)} of its value`);
    t.true(worst < 1e-5, `N=${n}: ${where}: a difference of ${worst.toExponential(2)} of the tensor's scale`);
    // the whole batch's arithmetic is the one-process trainer's, in the same order: the same bits
    if (n === 1) t.is(elementwise, 0, 'N=1: every weight and momentum bit for bit');
    await c.release();
    c.close();
  }
});

test.serial('micro-batches that do not divide the batch are refused by Configure and by Step (INVALID_ARGUMENT), and the run goes on; micro-batches also travel by Exchange calls', async (t) => {
  // tower 1 as a worker without the stream: both send one Exchange call a tensor, each with its micro-batch
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B), '--no-exchange-stream'])]);
  const source = new SyntheticSource(tiny, SEED);
  t.throws(() => new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source, microBatches: 3 }), {
    name: 'UserError',
    message: '--micro-batches 3: 3 micro-batches do not divide the batch of 32 images (divisors: 1, 2, 4, 8, 16, 32)',
  });
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source, microBatches: 2 });
  t.teardown(() => c.close());
  await c.start();
  const client = c.clients[0];
  const configure = { run_id: c.runId, batch: B, seed: SEED, peer_address: w1.address, micro_batches: 5 };
  const e1 = (await t.throwsAsync(client.configure(configure))) as grpc.ServiceError;
  t.is(e1.code, grpc.status.INVALID_ARGUMENT);
  t.is(e1.details, 'micro_batches: 5 micro-batches do not divide the batch of 32 images (divisors: 1, 2, 4, 8, 16, 32)');
  const b = await source.batch(0, B);
  const hyperMsg = { lr: 0.01, momentum: 0.9, weight_decay: 0.05, no_bias_decay: false };
  const e2 = (await t.throwsAsync(client.step({ run_id: c.runId, step: 0, images: b.images, labels: Array.from(b.labels), hyper: hyperMsg, micro_batches: 6 }))) as grpc.ServiceError;
  t.is(e2.code, grpc.status.INVALID_ARGUMENT);
  t.is(e2.details, 'Step micro_batches: 6 micro-batches do not divide the batch of 32 images (divisors: 1, 2, 4, 8, 16, 32)');
  t.is((await client.status()).state, 'READY');
  const m = await c.step(b);
  t.is(m.micro_batches, 2);
  t.true(Number.isFinite(m.loss));
  const sizes = crossingSizes(tiny, B).map((x) => 4 * x.floats);
  t.is(m.crossing_bytes, 2 * (2 * (sizes[0]! + sizes[1]! + sizes[2]!) + sizes[3]!));
  for (const w of m.workers) t.is(w.messages_sent, 14, `tower ${w.tower}: 7 tensors in 2 micro-batches`);
});

test.serial('in micro-batches, a run resumed from its parameters and momentum continues exactly; an evaluation runs between such steps', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const source = new SyntheticSource(tiny, SEED);
  const workers = [w0.address, w1.address] as const;
  const a = new Coordinator({ spec: tiny, workers, batch: B, seed: SEED, hyper, source, microBatches: 2 });
  await a.start();
  const whole: number[] = [];
  let saved: [Map<string, LayerTensors>, Map<string, LayerTensors>] | null = null;
  for (let s = 0; s < 4; s++) {
    if (s === 2) saved = [await a.clients[0].parameters(true), await a.clients[1].parameters(true)];
    whole.push((await a.step(await source.batch(s, B))).loss);
  }
  const ev = await a.evaluateBatch(await source.batch(9, B));
  t.true(Number.isFinite(ev.loss) && ev.batch === B, 'an evaluation after steps in micro-batches');
  await a.release();
  a.close();
  // a new run on the same workers from step 2's parameters and momentum (SetParameters), still in 2 micro-batches
  const params = saved!.map((p) => new Map([...p].map(([name, l]) => [name, { w: l.w, b: l.b, vw: l.vw!, vb: l.vb! }]))) as unknown as [TowerParams, TowerParams];
  const b = new Coordinator({ spec: tiny, workers, batch: B, seed: SEED, hyper, source, microBatches: 2, resume: { params, step: 2 } });
  t.teardown(() => b.close());
  await b.start();
  const resumed = [(await b.step(await source.batch(2, B))).loss, (await b.step(await source.batch(3, B))).loss];
  t.deepEqual(resumed, whole.slice(2), 'steps 2 and 3 of the resumed run are the uninterrupted run, bit for bit');
});
