/**
 * Each layer's norms after a step (--norms-every): every N-th step's metrics carry, per tower and layer, the L2
 * norms of the weights, of the step's change of them (the momentum v of the paper's update) and of the biases,
 * equal to the norms of the parameters the workers give afterwards; other steps carry none. Real worker
 * processes on loopback.
 */
import test from 'ava';
import { getPreset, towerParamLayers } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource, type StepMetrics } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const spec = getPreset('tiny');

const norm = (x: Float32Array): number => Math.sqrt(x.reduce((s, v) => s + v * v, 0));

test('every --norms-every steps the step line has each layer\'s norms after the update, as the parameters read afterwards give them', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const c = new Coordinator({ spec, workers: [w0.address, w1.address], batch: 4, seed: 5, hyper: { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 }, source: new SyntheticSource(spec, 5), normsEvery: 2 });
  t.teardown(() => c.close());
  await c.start();
  const steps: StepMetrics[] = [];
  await c.run(3, (m) => steps.push(m));
  // the weights before the 4th step: its norms' update is the change the step makes
  const before = await Promise.all([0, 1].map((t) => c.clients[t]!.parameters()));
  await c.run(1, (m) => steps.push(m));
  t.deepEqual(
    steps.map((m) => m.layer_norms !== undefined),
    [false, true, false, true],
    'after the 2nd and the 4th step',
  );
  const rows = steps[3]!.layer_norms!;
  for (const tower of [0, 1] as const) {
    const params = await c.clients[tower]!.parameters(true);
    const mine = rows.filter((r) => r.tower === tower);
    t.deepEqual(
      mine.map((r) => r.layer),
      towerParamLayers(spec, tower).map((l) => l.name),
      `tower ${tower}: every layer with parameters, in model order (fc8 on tower 0 only)`,
    );
    for (const r of mine) {
      const p = params.get(r.layer)!;
      t.true(Math.abs(r.weight - norm(p.w)) <= 1e-9 * norm(p.w), `${r.layer} weight`);
      t.true(Math.abs(r.update - norm(p.vw!)) <= 1e-9 * norm(p.vw!), `${r.layer} update`);
      t.true(Math.abs(r.bias - norm(p.b)) <= 1e-9 * Math.max(norm(p.b), 1e-30), `${r.layer} bias`);
      t.true(r.update > 0 && r.update < r.weight, `${r.layer}: a step changes the weights a little (${r.update} of ${r.weight})`);
      // |w after - w before|: the same up to float32 rounding of the weights
      const w0 = before[tower]!.get(r.layer)!.w;
      const change = Math.sqrt(p.w.reduce((a, v, i) => a + (v - w0[i]!) ** 2, 0));
      t.true(Math.abs(change - r.update) <= 1e-3 * r.update + 1e-7 * r.weight, `${r.layer}: the step's change ${change} against ${r.update}`);
    }
  }
});
