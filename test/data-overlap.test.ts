/**
 * The coordinator's training loop makes the next batch while the workers compute the step (a source computes
 * on the coordinator's thread when asked): each step's Step requests go out first, and every batch after the
 * first is asked for while a step is in flight; the batches are the same ones, step for step.
 */
import test from 'ava';
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource, type BatchSource } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

test('the next batch is made while the workers compute the step in flight, not before its Step requests leave', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const synthetic = new SyntheticSource(tiny, 3);
  const asked: { step: number; stepInFlight: boolean; turned: boolean }[] = [];
  let c: Coordinator | null = null;
  // whether the event loop turned (gRPC writes the Step requests in a turn) between the step's start and the batch
  let turned = true;
  const source: BatchSource = {
    description: 'synthetic gratings, watched',
    batch: (step, size) => {
      asked.push({ step, stepInFlight: !(c as unknown as { both: { idle: boolean } }).both.idle, turned });
      return synthetic.batch(step, size);
    },
  };
  // steps not queued: each goes out through `step` (queued-steps.test.ts has the queued ones)
  c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 3, hyper, source, queueSteps: false });
  t.teardown(() => c!.close());
  await c.start();
  const step = c.step.bind(c);
  Object.assign(c, {
    step: (b: Parameters<Coordinator['step']>[0]) => {
      turned = false;
      setImmediate(() => (turned = true));
      return step(b);
    },
  });
  const metrics = await c.run(4, () => {});
  t.deepEqual(
    metrics.map((m) => m.step),
    [0, 1, 2, 3],
  );
  t.deepEqual(asked, [
    { step: 0, stepInFlight: false, turned: true },
    { step: 1, stepInFlight: true, turned: true },
    { step: 2, stepInFlight: true, turned: true },
    { step: 3, stepInFlight: true, turned: true },
  ]);
});
