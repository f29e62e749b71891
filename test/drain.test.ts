/**
 * `worker --drain` (a Kubernetes eviction): the first SIGTERM while a run holds the worker waits until nothing is
 * lost (the run lets it go, or a checkpoint has read its parameters); a worker no run holds stops at once; a
 * second signal stops it at once. Real worker processes on loopback, tiny preset.
 */
import test from 'ava';
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const B = 4;
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

test('a draining worker no run holds stops at once', async (t) => {
  const { p } = await startWorker(t, 0, ['--drain']);
  p.proc.kill('SIGTERM');
  t.is((await p.exited).code, 0, p.output());
  t.regex(p.output(), /stopping \(SIGTERM\)/);
});

test('a draining worker serves on after SIGTERM until a checkpoint with its parameters is written (the next step after the read says so), or until its run lets it go', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--drain']), startWorker(t, 1)]);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: 3, hyper, source: new SyntheticSource(tiny, 3) });
  t.teardown(() => c.close());
  await c.start();
  const source = new SyntheticSource(tiny, 3);
  await c.step(await source.batch(0, B));
  w0.p.proc.kill('SIGTERM');
  await w0.p.waitFor(/SIGTERM: draining: serving until a checkpoint with this tower's parameters is written or the run lets this worker go, for 120 s at most/);
  // it still trains (its step replies ask the coordinator for a checkpoint: test/faults.test.ts)
  t.is((await c.step(await source.batch(1, B))).step, 1);
  t.is(w0.p.proc.exitCode, null, 'still serving');
  // parameters without momentum (inspection) are no checkpoint
  await c.clients[0].parameters(false);
  await new Promise((r) => setTimeout(r, 600));
  t.is(w0.p.proc.exitCode, null, 'still serving after a read without momentum');
  // a checkpoint's read, then (the file written) the next step: refused, and the worker goes
  await c.clients[0].parameters(true);
  await new Promise((r) => setTimeout(r, 600));
  t.is(w0.p.proc.exitCode, null, 'still serving after the read: the checkpoint may not be written yet');
  const next = await t.throwsAsync(c.step(await source.batch(2, B)));
  t.regex(String(next?.message), /worker 0 is draining \(asked to stop\): the checkpoint after step 2 has its parameters, and it stops now/);
  t.is((await w0.p.exited).code, 0, w0.p.output());
  t.regex(w0.p.output(), /stopping \(SIGTERM, drained: a checkpoint with this tower's parameters is written\)/);
});

test('a draining worker stops once its run lets it go (the coordinator releases it at its end)', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1, ['--drain'])]);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: 3, hyper, source: new SyntheticSource(tiny, 3) });
  t.teardown(() => c.close());
  await c.start();
  await c.step(await new SyntheticSource(tiny, 3).batch(0, B));
  w1.p.proc.kill('SIGTERM');
  await w1.p.waitFor(/SIGTERM: draining/);
  await c.release();
  t.is((await w1.p.exited).code, 0, w1.p.output());
  t.regex(w1.p.output(), /stopping \(SIGTERM, drained: the run let this worker go\)/);
});

test('a draining worker whose checkpoint does not come within --drain-timeout stops anyway, saying what is lost', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--drain', '--drain-timeout', '1']), startWorker(t, 1)]);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: 3, hyper, source: new SyntheticSource(tiny, 3) });
  t.teardown(() => c.close());
  await c.start();
  w0.p.proc.kill('SIGTERM');
  t.is((await w0.p.exited).code, 0, w0.p.output());
  t.regex(w0.p.output(), /stopping \(SIGTERM, drained: no checkpoint within --drain-timeout 1 s: the steps since the last one are lost\)/);
});

test('a second signal stops a draining worker at once', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--drain']), startWorker(t, 1)]);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: 3, hyper, source: new SyntheticSource(tiny, 3) });
  t.teardown(() => c.close());
  await c.start();
  w0.p.proc.kill('SIGTERM');
  await w0.p.waitFor(/SIGTERM: draining/);
  w0.p.proc.kill('SIGTERM');
  t.is((await w0.p.exited).code, 0, w0.p.output());
  t.regex(w0.p.output(), /stopping \(SIGTERM again\)/);
});
