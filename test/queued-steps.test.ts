/**
 * Queued steps (feature "queued-steps"): the coordinator sends step k+1 while step k runs when nothing is due
 * between them, and each worker starts it the moment it ends step k. The arithmetic is the same: a queued run's
 * losses, weights and momentum equal those of a run whose steps each wait for the one before, bit for bit.
 * A worker holds one such step at most, refuses it after a failed step, and a wait cancelled by the coordinator
 * leaves the worker as it was.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import type { StepRequest } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource, heldOutSet, summarise, type BatchSource, type StepMetrics } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const B = 8;
const SEED = 11;
const hyper: SgdHyper = { lr: 0.02, momentum: 0.9, weightDecay: 0.0005 };

test.serial('queued steps give the losses, weights and momentum of steps that wait for each other, bit for bit; nothing is queued across an evaluation', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const STEPS = 7;
  const runWith = async (queueSteps: boolean) => {
    const c = new Coordinator({
      spec: tiny,
      workers: [w0.address, w1.address],
      batch: B,
      seed: SEED,
      hyper,
      source: new SyntheticSource(tiny, SEED),
      queueSteps,
      // after steps 3 and 6 (every 3) and 7 (the last): nothing is queued across those
      eval: { every: 3, set: heldOutSet('synthetic', tiny, SEED, B, 1) },
    });
    t.teardown(() => c.close());
    await c.start();
    const evals: number[] = [];
    const steps: StepMetrics[] = await c.run(STEPS, () => {}, { onEval: (e) => evals.push(e.loss) });
    const params = [await c.clients[0].parameters(true), await c.clients[1].parameters(true)];
    c.close();
    return { losses: steps.map((m) => m.loss), evals, params, queued: c.stepsQueued, steps: steps.map((m) => m.step), metrics: steps };
  };
  const waiting = await runWith(false);
  const queued = await runWith(true);
  t.is(waiting.queued, 0);
  // queued: step k+1 sent during step k for k + 1 = 1, 2, 4, 5 (steps 0..6; evaluations after 3, 6 and 7 steps)
  t.is(queued.queued, 4);
  t.deepEqual(queued.steps, [0, 1, 2, 3, 4, 5, 6]);
  t.deepEqual(queued.losses, waiting.losses);
  t.deepEqual(queued.evals, waiting.evals);
  t.is(queued.evals.length, 3);
  // a step's images/s never exceeds what its workers did (a queued step's replies may be waiting when the
  // coordinator takes them, and its `ms` read short)
  for (const m of [...queued.metrics, ...waiting.metrics]) {
    const longest = Math.max(...m.workers.map((w) => w.total_ms));
    t.true(m.images_per_s <= (m.batch / longest) * 1000 + 1e-9, `step ${m.step}: ${m.images_per_s} images/s, a worker took ${longest} ms for ${m.batch}`);
  }
  let compared = 0;
  for (const tower of [0, 1] as const) {
    for (const [name, p] of waiting.params[tower]!) {
      const q = queued.params[tower]!.get(name)!;
      for (const k of ['w', 'b', 'vw', 'vb'] as const) {
        t.deepEqual(q[k], p[k], `tower ${tower} ${name}.${k}`);
        compared += p[k]!.length;
      }
    }
  }
  t.true(compared > 6000, `${compared} values compared`);
});

test.serial('a slow source: the wait for its batches counts in the data-wait share, also while a step is to be queued, and a stop asked while the next batch is made is not queued past', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const synthetic = new SyntheticSource(tiny, SEED);
  const SLOW_MS = 600;
  let c: Coordinator | null = null;
  const source: BatchSource = {
    description: 'synthetic gratings, slowly',
    batch: async (step, size) => {
      await new Promise((r) => setTimeout(r, SLOW_MS));
      // asked to stop while batch 3 is made (step 2 in flight): step 3 must not be queued behind step 2
      if (step === 3) c!.requestStop('test');
      return synthetic.batch(step, size);
    },
  };
  c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source });
  t.teardown(() => c!.close());
  await c.start();
  const t0 = performance.now();
  const steps = await c.run(10, () => {});
  const runMs = performance.now() - t0;
  t.deepEqual(
    steps.map((m) => m.step),
    [0, 1, 2],
  );
  t.deepEqual(c.stoppedEarly, { reason: 'test', step: 3 });
  // steps 1 and 2 were queued (their batches came while the step before ran); step 3 was not
  t.is(c.stepsQueued, 2);
  // the run's time is its steps' and the waits for a batch with no step running (the batches take longer than
  // the steps): the data wait counts those, the ones while the next step was to be queued included (counting
  // only the waits before a step that goes out alone would give batch 0's, about 0.6 s)
  const waitedMs = c.dataWaitShare * runMs;
  const stepsMs = steps.reduce((a, m) => a + m.ms, 0);
  const why = `waited ${waitedMs.toFixed(0)} ms for the data, the steps took ${stepsMs.toFixed(0)} ms, the run ${runMs.toFixed(0)} ms`;
  t.log(why);
  t.true(waitedMs > runMs - stepsMs - (0.15 * runMs + 100), why);
  t.true(waitedMs + stepsMs < runMs + 50, why);
});

test.serial('a worker holds one step sent during the one before, refuses it after that step failed, and a cancelled wait leaves it as it was', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const source = new SyntheticSource(tiny, SEED);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source });
  t.teardown(() => c.close());
  await c.start();
  const [c0, c1] = c.clients;
  const req = async (step: number): Promise<StepRequest> => {
    const b = await source.batch(step, B);
    return { run_id: c.runId, step, images: b.images, labels: Array.from(b.labels), hyper: { lr: hyper.lr, momentum: hyper.momentum, weight_decay: hyper.weightDecay } };
  };
  const refusal = async (p: Promise<unknown>): Promise<grpc.ServiceError> => {
    const e = await t.throwsAsync(p);
    return e as unknown as grpc.ServiceError;
  };

  // step 0 on tower 0 alone: it waits at its first crossing for tower 1, which has not been asked yet
  const step0 = c0.step(await req(0));
  await t.notThrowsAsync(waitForState(c0, 'STEPPING'));
  // step 1 is held behind it; a second step 1, or step 2, is refused at once
  const held = new AbortController();
  const step1 = c0.step(await req(1), { signal: held.signal });
  step1.catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  const again = await refusal(c0.step(await req(1)));
  t.is(again.code, grpc.status.FAILED_PRECONDITION);
  t.regex(again.details, /busy: step 0 is running and step 1 waits for it already/);
  const later = await refusal(c0.step(await req(2)));
  t.regex(later.details, /busy: step 0 is running/);
  // the held step cancelled: the worker is still in step 0, which then ends normally once tower 1 takes part
  held.abort();
  const cancelled = await refusal(step1);
  t.is(cancelled.code, grpc.status.CANCELLED);
  t.is((await c0.status()).state, 'STEPPING');
  const [r0, r1] = await Promise.all([step0, c1.step(await req(0))]);
  t.true(Number.isFinite(r0.loss) && r0.has_loss && !r1.has_loss);
  // step 1 now, with step 2 sent to both workers during it: they run both, in order
  const s1 = Promise.all([c0.step(await req(1)), c1.step(await req(1))]);
  const s2 = Promise.all([c0.step(await req(2)), c1.step(await req(2))]);
  t.deepEqual((await s1).map((r) => r.step), [1, 1]);
  t.deepEqual((await s2).map((r) => r.step), [2, 2]);
  t.deepEqual((await Promise.all([c0.status(), c1.status()])).map((s) => [s.state, s.steps_done]), [['READY', 3], ['READY', 3]]);

  // step 3 on tower 0 alone, step 4 held behind it; step 3 cancelled: the worker fails it, and step 4 is refused so
  const first = new AbortController();
  const step3 = c0.step(await req(3), { signal: first.signal });
  step3.catch(() => {});
  await t.notThrowsAsync(waitForState(c0, 'STEPPING'));
  const step4 = c0.step(await req(4));
  await new Promise((r) => setTimeout(r, 200));
  first.abort();
  const failed = await refusal(step4);
  t.is(failed.code, grpc.status.FAILED_PRECONDITION);
  t.regex(failed.details, /the run failed earlier \(step 3: step 3 cancelled by the coordinator\); configure again/);
});

/** Polls Status until the worker is in `state` (at most 10 s). */
async function waitForState(client: Coordinator['clients'][0], state: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await client.status()).state === state) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the worker never reached ${state}`);
}

test.serial("a queued step's rate is never above the workers' own time for it allows, however busy the coordinator was when it ended; nor is the run's", async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const inner = new SyntheticSource(tiny, SEED);
  // the batch of step 2 takes this thread for 1.5 s, made while step 1 runs queued behind step 0: both end meanwhile
  const busy: BatchSource = {
    description: inner.description,
    batch: async (step, n) => {
      const b = await inner.batch(step, n);
      if (step === 2) for (const until = Date.now() + 1500; Date.now() < until; );
      return b;
    },
  } as BatchSource;
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source: busy, queueSteps: true });
  t.teardown(() => c.close());
  await c.start();
  const steps = await c.run(5, () => {});
  t.true(c.stepsQueued > 0, 'steps were queued');
  const owns: number[] = [];
  for (const m of steps) {
    const own = Math.max(...m.workers.map((w) => w.total_ms));
    owns.push(own);
    t.true(m.images_per_s <= (B / own) * 1000 + 1e-9, `step ${m.step}: ${m.images_per_s.toFixed(1)} images/s, the workers took ${own.toFixed(2)} ms`);
  }
  // the closing line: its median step no shorter than the median of the workers' own times (step 0 left out)
  const done = summarise(steps, 1000);
  const sorted = owns.slice(1).sort((a, b) => a - b);
  t.true(done.median_step_ms >= sorted[Math.floor((sorted.length - 1) / 2)]!, `median ${done.median_step_ms.toFixed(2)} ms; the workers' ${sorted.map((x) => x.toFixed(1)).join(', ')}`);
});
