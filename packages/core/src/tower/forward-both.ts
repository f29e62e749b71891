/**
 * The forward pass of both towers in one process: [tower 0's; tower 1's] into every segment after a
 * crossing, the classifier on tower 0 only. The one-process trainer's forward, and the in-process
 * inspection of a checkpoint (a layer's output on each tower). Crossing tensors are host arrays, or on a
 * device that keeps results (webgpu) device tensors joined by a kernel (crossing-device.ts).
 */
import type { DeviceTensor } from '../device.js';
import type { Tower, StepContext, TowerTap } from './tower.js';
import { concatTowers } from './crossing.js';
import { deviceCrossings } from './crossing-device.js';
import { segmentOfLayer } from '../model/segments.js';


/**
 * Runs both towers (built for the same batch size) forward on `images` (normalised, CNHW). With `tapLayer`,
 * reads that layer's output back on both towers and stops after the segment that computes it (no need to go
 * further); throws when the model has no such layer. Returns each tower's output of the tapped layer (null on
 * a tower that does not compute it, tower 1 at fc8; both null without a tap). After a full pass tower 0's
 * logits are in `towers[0].lastLogits()`.
 */
export async function forwardBothTowers(towers: readonly [Tower, Tower], images: Float32Array, ctx: StepContext, tapLayer?: string): Promise<[Float32Array | null, Float32Array | null]> {
  const segments = towers[0].segments;
  const last = tapLayer === undefined ? segments.length - 1 : segmentOfLayer(segments, tapLayer);
  if (last < 0) throw new Error(`no layer ${tapLayer} in preset ${towers[0].spec.name}`);
  const taps: [TowerTap | undefined, TowerTap | undefined] = tapLayer === undefined ? [undefined, undefined] : [{ layer: tapLayer }, { layer: tapLayer }];
  const tap = (i: number, k: number) => (i === last ? taps[k] : undefined);
  const device = towers[0].device;
  if (device.resident) {
    // the towers share one GPU: the images go up once, and the crossings are joined there
    const crossings = deviceCrossings(device);
    let x: DeviceTensor = await device.upload(images);
    let outs: (DeviceTensor | null)[] = [];
    for (let i = 0; i <= last; i++) {
      if (i > 0) x = await crossings.concat(i, outs[0]!, outs[1]!, towers[0].outFloats(i - 1));
      const at = x;
      outs = await Promise.all(towers.map((t, k) => (t.runs(i) ? t.forwardSegmentOnDevice(i, at, ctx, tap(i, k)) : null)));
    }
  } else {
    let host: Float32Array[] = [images, images];
    for (let i = 0; i <= last; i++) {
      const x = i === 0 ? images : concatTowers(host[0]!, host[1]!);
      host = await Promise.all(towers.map((t, k) => (t.runs(i) ? t.forwardSegment(i, x, ctx, tap(i, k)) : new Float32Array(0))));
    }
  }
  return [taps[0]?.out ?? null, taps[1]?.out ?? null];
}
