/**
 * Which WebGPU adapter each of launch's two workers opens: one GPU each on a host with two or
 * more, both on the one GPU otherwise; what launch says about it.
 */
import type { AdapterInfo } from '@alexnet-mp/core';

export interface DevicePlan {
  /** `--device` for worker 0 and worker 1; null: none given (webasm, cpu, or no adapter at all). */
  readonly devices: readonly [number, number] | null;
  /** What launch prints about it; null when there is nothing to say (webasm, cpu). */
  readonly line: string | null;
}

const label = (a: AdapterInfo) => `device ${a.index} '${a.name}'`;

/** The plan for `--backend backend` on a host with these adapters (in Dawn's order). */
export function planDevices(backend: string, adapters: readonly AdapterInfo[]): DevicePlan {
  if (backend !== 'webgpu' && backend !== 'auto') return { devices: null, line: null };
  const gpus = adapters.filter((a) => !a.software);
  if (gpus.length >= 2) {
    const [g0, g1] = [gpus[0]!, gpus[1]!];
    const more = gpus.length > 2 ? ` (${gpus.length} GPUs here; the others stay idle)` : '';
    return { devices: [g0.index, g1.index], line: `two GPUs: worker 0 on ${label(g0)}, worker 1 on ${label(g1)}${more}` };
  }
  if (gpus.length === 1) return { devices: [gpus[0]!.index, gpus[0]!.index], line: `one GPU: both workers on ${label(gpus[0]!)} (GPU 0)` };
  if (adapters.length === 0) return { devices: null, line: backend === 'auto' ? 'no WebGPU adapter here: both workers on webasm' : null };
  const soft = adapters[0]!;
  if (backend === 'auto') return { devices: null, line: `no GPU here, only the software adapter ${label(soft)}: both workers on webasm (--backend webgpu runs them on it)` };
  return { devices: [soft.index, soft.index], line: `no GPU here: both workers on the software adapter ${label(soft)}, which runs on the CPU` };
}
