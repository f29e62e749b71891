/**
 * One tower's parameters and momentum as the kernels see them. On webasm and
 * cpu they are the host arrays of TowerParams, updated in place. On webgpu
 * they stay on the device between steps (each update would otherwise upload
 * and read back every weight); `sync()` reads them back for checkpoints,
 * inspection and GetParameters.
 */
import type { Device, DeviceTensor } from '../device.js';
import type { TowerParams } from '../model/params.js';

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

  /** On webgpu, puts the initial parameters on the device (once), so that kernels always see device tensors. */
  async ready(): Promise<void> {
    if (this.uploaded || !this.device.resident) return;
    this.uploaded = true;
    for (const [name, p] of this.current) {
      const next = { w: await this.device.upload(p.w), b: await this.device.upload(p.b), vw: await this.device.upload(p.vw), vb: await this.device.upload(p.vb) };
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
    for (const k of ['w', 'b', 'vw', 'vb'] as const) {
      this.device.keep(next[k]);
      if (old[k] !== next[k]) this.device.drop(old[k]);
    }
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

  /** The host arrays, read back from the device first where they live there. */
  async sync(): Promise<TowerParams> {
    if (!this.stale) return this.host;
    for (const [name, p] of this.current) {
      const h = this.host.get(name)!;
      h.w = await this.device.toHost(p.w, h.w.length);
      h.b = await this.device.toHost(p.b, h.b.length);
      h.vw = await this.device.toHost(p.vw, h.vw.length);
      h.vb = await this.device.toHost(p.vb, h.vb.length);
    }
    this.stale = false;
    return this.host;
  }
}
