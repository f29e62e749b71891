/**
 * One tower's parameters and momentum as the kernels see them. On webasm and
 * cpu they are the host arrays of TowerParams, updated in place. On webgpu
 * they stay on the device between steps (each update would otherwise upload
 * and read back every weight); `sync()` reads them back for checkpoints,
 * inspection and GetParameters.
 */
import type { Device, DeviceTensor } from '../device.js';
import type { TowerParams } from '../model/params.js';
import { packsWithMomentum } from '../kernels/sgd.js';

export interface DeviceLayerParams {
  w: DeviceTensor;
  b: DeviceTensor;
  vw: DeviceTensor;
  vb: DeviceTensor;
}

export class ParamStore {
  private readonly current = new Map<string, DeviceLayerParams>();
  private stale = false;
  private uploaded = false;

  constructor(readonly device: Device, readonly host: TowerParams) {
    for (const [name, p] of host) this.current.set(name, { w: p.w, b: p.b, vw: p.vw, vb: p.vb });
  }

  /**
   * On webgpu, puts the initial parameters on the device (once), so that kernels always see device
   * tensors: each with its momentum in one packed [w; v] tensor where it fits (packsWithMomentum;
   * kernels reading w read its first half), else apart.
   */
  async ready(): Promise<void> {
    if (this.uploaded || !this.device.resident) return;
    this.uploaded = true;
    const put = async (x: Float32Array, v: Float32Array): Promise<[DeviceTensor, DeviceTensor]> => {
      if (!packsWithMomentum(this.device, x.length)) return [await this.device.upload(x), await this.device.upload(v)];
      const both = new Float32Array(2 * x.length);
      both.set(x);
      both.set(v, x.length);
      const t = await this.device.upload(both);
      return [t, t];
    };
    for (const [name, p] of this.current) {
      const [w, vw] = await put(p.w as Float32Array, p.vw as Float32Array);
      const [b, vb] = await put(p.b as Float32Array, p.vb as Float32Array);
      const next = { w, b, vw, vb };
      for (const k of ['w', 'b', 'vw', 'vb'] as const) this.device.keep(next[k]);
      this.current.set(name, next);
    }
    this.stale = true;
  }

  names(): string[] {
    return [...this.current.keys()];
  }

  get(name: string): DeviceLayerParams {
    const p = this.current.get(name);
    if (!p) throw new Error(`no parameters for layer ${name}`);
    return p;
  }

  /** Replaces a layer's parameters after an update; resident ones are kept across release() and the old ones freed. */
  set(name: string, next: DeviceLayerParams): void {
    const old = this.get(name);
    const kept = new Set(Object.values(next));
    for (const t of kept) this.device.keep(t);
    // a packed [w; v] tensor is both w and vw: dropped once
    for (const t of new Set(Object.values(old))) if (!kept.has(t)) this.device.drop(t);
    this.current.set(name, next);
    const h = this.host.get(name)!;
    if (next.w instanceof Float32Array && next.b instanceof Float32Array && next.vw instanceof Float32Array && next.vb instanceof Float32Array) {
      h.w = next.w;
      h.b = next.b;
      h.vw = next.vw;
      h.vb = next.vb;
    } else {
      this.stale = true;
    }
  }

  /** A parameter and its momentum on the host, from one packed tensor or two. */
  private async pair(x: DeviceTensor, v: DeviceTensor, n: number): Promise<[Float32Array, Float32Array]> {
    if (x !== v) return [await this.device.toHost(x, n), await this.device.toHost(v, n)];
    const both = await this.device.toHost(x, 2 * n);
    return [both.slice(0, n), both.slice(n)];
  }

  /** The host arrays, read back from the device first where they live there. */
  async sync(): Promise<TowerParams> {
    if (!this.stale) return this.host;
    for (const [name, p] of this.current) {
      const h = this.host.get(name)!;
      [h.w, h.vw] = await this.pair(p.w, p.vw, h.w.length);
      [h.b, h.vb] = await this.pair(p.b, p.vb, h.b.length);
    }
    this.stale = false;
    return this.host;
  }
}
