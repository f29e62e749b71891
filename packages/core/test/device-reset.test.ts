/**
 * Device.reset frees a replaced run's kernels and tensors (a worker configured again after its peer's restart, or
 * for a resumed run): gpu.js would otherwise keep every kernel it made for the life of the process. The device
 * trains as before afterwards, a kernel of the replaced run called again says so, and the count of live
 * kernels stays that of one run however often runs are replaced.
 */
import test from 'ava';
import { tiny } from '../src/model/presets.js';
import { initTowerParams, type TowerParams } from '../src/model/params.js';
import { Device } from '../src/device.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend } from './helpers.js';
import { towersPass } from './two-towers.js';

const N = 4;
const ctx = { seed: 7, step: 3, train: true };
const h = { lr: 0.01, momentum: 0.9, weightDecay: 0.05, decayBiases: false };
const params = (): [TowerParams, TowerParams] => [initTowerParams(tiny, 0, 11), initTowerParams(tiny, 1, 11)];
const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

/** A step of both towers, a device each (a tower's update frees its device's step results, as in a worker). */
async function trainedWeights(dev: readonly [Device, Device]): Promise<{ loss: number; w: Buffer[] }> {
  const b = syntheticBatch(N, tiny.inputSize, 5);
  const pass = await towersPass(dev, tiny, params(), b.images, b.labels, ctx);
  await Promise.all(pass.towers.map((tw) => tw.update(h)));
  const synced = await Promise.all(pass.towers.map((tw) => tw.syncParams()));
  return { loss: pass.loss, w: synced.flatMap((p) => [...p.values()].flatMap((l) => [bytes(l.w), bytes(l.b)])) };
}

test('a reset device frees the replaced run kernels and trains as a fresh one; the live kernels stay one run deep', async (t) => {
  const dev = [await Device.create(testBackend, { onFallback: 'throw' }), await Device.create(testBackend, { onFallback: 'throw' })] as const;
  t.teardown(() => dev.forEach((d) => d.destroy()));
  const first = await trainedWeights(dev);
  const perRun = dev[0].kernelCount + dev[1].kernelCount;
  t.true(perRun > 10, `${perRun} kernels for a run`);
  for (let run = 0; run < 3; run++) {
    for (const d of dev) d.reset();
    t.is(dev[0].kernelCount + dev[1].kernelCount, 0);
    const again = await trainedWeights(dev);
    t.is(again.loss, first.loss);
    t.true(again.w.every((w, i) => w.equals(first.w[i]!)), 'the same weights, bit for bit, as before the reset');
    t.is(dev[0].kernelCount + dev[1].kernelCount, perRun, `run ${run + 2}: as many live kernels as one run`);
  }
});

test("a kernel of a replaced run called after the reset says so, rather than rebuilding itself", async (t) => {
  const dev = await Device.create(testBackend, { onFallback: 'throw' });
  t.teardown(() => dev.destroy());
  const b = syntheticBatch(N, tiny.inputSize, 5);
  const pass = await towersPass(dev, tiny, params(), b.images, b.labels, ctx);
  dev.reset();
  const e = await t.throwsAsync(pass.towers[0].update(h));
  t.regex(e!.message, /^kernel \S+ was freed with the run it belonged to \(Device\.reset\) and called again$/);
});
