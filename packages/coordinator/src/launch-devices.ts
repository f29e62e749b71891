/**
 * Which WebGPU adapter each of launch's two workers opens: one GPU each on a host with two or
 * more, both on the one GPU otherwise; what launch says about it. On CPUs, how many kernel threads
 * each of the two gets.
 */
import os from 'node:os';
import type { AdapterInfo } from '@alexnet-mp/core';

/**
 * Kernel threads (`worker --threads`) for each of two CPU workers on one host: half its cores, at least 1.
 * Each worker would otherwise start a worker thread per core and the two processes' threads would contend
 * for the same cores: on 2 cores, two cifar workers (batch 64) with 1 thread each ran at 60.7-62.0 images/s,
 * with 2 each at 56.7, and one process on both cores at 57.3-59.6 in the same runs
 * (bench/results/cpu-distributed-threads-2026-12-05.txt).
 */
export function colocatedThreads(cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 2));
}

/** What launch prints about the CPU workers' threads. */
export function threadsLine(threads: number, given: boolean, cores = os.availableParallelism()): string {
  const why = given ? '--threads' : cores < 2 ? 'at least one each; --threads N to choose' : 'half the cores each; --threads N to choose';
  return `this machine's ${cores} CPU core${cores === 1 ? '' : 's'}: ${threads} kernel thread${threads === 1 ? '' : 's'} for each worker (${why})`;
}

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
