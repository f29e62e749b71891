/**
 * One training pass of both gpu.js towers on one device, driven by hand the way the workers drive
 * them (each segment's input: the image, or both towers' outputs joined at a crossing; gradients split
 * back at each crossing), for comparison with the float64 reference model (reference/grouped-model.ts).
 */
import type { Device, DeviceTensor } from '../src/device.js';
import type { ModelSpec } from '../src/model/spec.js';
import type { TowerParams } from '../src/model/params.js';
import { Tower } from '../src/tower/tower.js';
import { concatTowers, sumSlices, towerSlice } from '../src/tower/crossing.js';

/**
 * `dev`: one device for both towers, or one each (as the one-process trainer and the workers have: a tower's
 * update frees its device's step results). `params`: the towers' parameters, or the towers of an earlier pass.
 */
export async function towersPass(
  dev: Device | readonly [Device, Device],
  spec: ModelSpec,
  params: [TowerParams, TowerParams] | readonly [Tower, Tower],
  images: Float32Array,
  labels: Float32Array,
  ctx: { seed: number; step: number; train: boolean },
  o: { weightsLater?: boolean } = {},
) {
  const N = labels.length;
  const [d0, d1] = 'length' in dev ? dev : [dev, dev];
  const towers = params[0] instanceof Tower ? (params as readonly [Tower, Tower]) : ([new Tower(d0, spec, 0, N, params[0] as TowerParams), new Tower(d1, spec, 1, N, params[1] as TowerParams)] as const);
  let outs: Float32Array[] = [images, images];
  for (let i = 0; i < towers[0].segments.length; i++) {
    const x = i === 0 ? images : concatTowers(outs[0]!, outs[1]!);
    outs = await Promise.all(towers.map((tw) => (tw.runs(i) ? tw.forwardSegment(i, x, ctx) : new Float32Array(0))));
  }
  const { losses, dlogits } = await towers[0].lossAndGradient(labels);
  const last = towers[0].segments.length - 1;
  const backward = o.weightsLater ? (tw: Tower, i: number, dy: DeviceTensor) => backwardWeightsLater(tw, i, dy) : (tw: Tower, i: number, dy: DeviceTensor) => tw.backwardSegment(i, dy);
  const dIn = (await backward(towers[0], last, dlogits))!;
  let d = [towerSlice(dIn, 0), towerSlice(dIn, 1)];
  for (let i = last - 1; i >= 0; i--) {
    const g = [await backward(towers[0], i, d[0]!), await backward(towers[1], i, d[1]!)];
    if (i > 0) d = [0, 1].map((s) => sumSlices(towerSlice(g[0]!, s as 0 | 1), towerSlice(g[1]!, s as 0 | 1)));
  }
  return { loss: losses.reduce((a, v) => a + v, 0) / N, grads: [towers[0].grads, towers[1].grads] as const, towers };
}

/**
 * Tower.backwardSegment with the weight gradients of the segment's first layer computed after its input
 * gradient, as a worker does while that gradient crosses; throws if computing them changed the input gradient.
 */
async function backwardWeightsLater(tw: Tower, i: number, dy: DeviceTensor): Promise<Float32Array | null> {
  const first = tw.segments[i]!.plans[0]!.layer.name;
  const had = tw.grads.get(first);
  const dx = await tw.backwardSegmentOnDevice(i, dy, { weightsLater: true });
  // segment 0 (conv1) has no input gradient: nothing to cross, nothing left for later
  if (i > 0 && tw.runs(i) && tw.grads.get(first) !== had) throw new Error(`segment ${i}: ${first}'s weight gradients were computed with its input gradient, not left for later`);
  const read = async () => (dx === null ? null : (await tw.device.toHost(dx, tw.inFloats(i))).slice());
  const before = await read();
  await tw.weightGradients();
  if (tw.runs(i) && tw.grads.get(first) === had) throw new Error(`segment ${i}: no weight gradients for ${first}`);
  const after = await read();
  if (before && after && !Buffer.from(before.buffer).equals(Buffer.from(after.buffer))) throw new Error(`segment ${i}: the input gradient changed while the weight gradients were computed`);
  return after;
}
