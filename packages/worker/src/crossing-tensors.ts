/**
 * The tensors at a crossing on this worker's device: a segment's input joined from this tower's output and the
 * peer's, the peer's slice of an input gradient, and this tower's output gradient summed from its own slice and
 * the peer's. On webgpu the joining, slicing and summing are kernels (core's DeviceCrossings) and only what
 * crosses goes between host and GPU: this tower's output and the peer's slice read back, the peer's tensor
 * uploaded; this tower's own half never leaves the device. On webasm and cpu, whose tensors are host arrays,
 * they are core's concatTowers, towerSlice and sumSlices. The values are the same either way: copies, and one
 * float32 addition per element, tower 0's slice + tower 1's.
 */
import { concatTowers, sumSlices, towerCrossings, towerSlice, type Device, type DeviceTensor, type Tower } from '@alexnet-mp/core';

export class CrossingTensors {
  private readonly device: Device;

  /**
   * The crossings of tower `tw`. On webgpu each result lies in a buffer of `tw`'s crossing kernels
   * (core's towerCrossings) until the same crossing of `tw` runs again: a step cut into micro-batches has a
   * Tower per micro-batch, an evaluation one per size, so their tensors never share a buffer.
   */
  constructor(private readonly tw: Tower) {
    this.device = tw.device;
  }

  private get t(): 0 | 1 {
    return this.tw.tower;
  }

  /** This tower's tensor and the peer's as [tower 0's, tower 1's]. */
  private ordered<T>(mine: T, theirs: T): [T, T] {
    return this.t === 0 ? [mine, theirs] : [theirs, mine];
  }

  /** This tower's output of segment i - 1 as the host array sent to the peer. */
  toSend(i: number, out: DeviceTensor): Promise<Float32Array> {
    return this.device.toHost(out, this.tw.outFloats(i - 1));
  }

  /** Segment i's input, [tower 0's output; tower 1's], from this tower's (on the device) and the peer's. */
  async join(i: number, mine: DeviceTensor, theirs: Float32Array): Promise<DeviceTensor> {
    if (!this.device.resident) return concatTowers(...this.ordered(mine as Float32Array, theirs));
    const [out0, out1] = this.ordered(mine, await this.device.upload(theirs));
    return towerCrossings(this.tw).concat(i, out0, out1, this.tw.outFloats(i - 1));
  }

  /** The peer's slice of segment i's input gradient `g`, as the host array sent to it. */
  async peerSlice(i: number, g: DeviceTensor): Promise<Float32Array> {
    const other = this.t === 0 ? 1 : 0;
    if (!this.device.resident) return towerSlice(g as Float32Array, other);
    const half = this.tw.inFloats(i) / 2;
    return this.device.toHost(await towerCrossings(this.tw).slice(i, g, half, other), half);
  }

  /** This tower's slice of segment i's input gradient `g`, left where it is. */
  ownSlice(i: number, g: DeviceTensor): Promise<DeviceTensor> {
    if (!this.device.resident) return Promise.resolve(towerSlice(g as Float32Array, this.t));
    return towerCrossings(this.tw).slice(i, g, this.tw.inFloats(i) / 2, this.t);
  }

  /** This tower's gradient of segment i - 1's output: its own slice of segment i's input gradient plus the peer's. */
  async sum(i: number, mine: DeviceTensor, theirs: Float32Array): Promise<DeviceTensor> {
    if (!this.device.resident) return sumSlices(...this.ordered(mine as Float32Array, theirs));
    const [from0, from1] = this.ordered(mine, await this.device.upload(theirs));
    return towerCrossings(this.tw).sum(i, from0, from1, this.tw.inFloats(i) / 2);
  }
}
