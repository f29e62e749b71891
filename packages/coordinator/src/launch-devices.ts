/**
 * Which WebGPU adapter each of launch's two workers opens: one GPU each on a host with two or
 * more, both on the one GPU otherwise; what launch says about it. On CPUs, how many kernel threads
 * each of the two gets, and on which cores.
 */
import os from 'node:os';
import type { AdapterInfo } from '@alexnet-mp/core';
import { allowedCpus, cpuHalves, formatCpuList, pinningRefused, pinningUnavailable } from './cpu-affinity.js';

/**
 * Kernel threads (`worker --threads`) for each of two CPU workers on one host: half its cores, at least 1.
 * Each worker would otherwise start a worker thread per core and the two processes' threads would contend
 * for the same cores: on 2 cores, two cifar workers (batch 64) with 1 thread each ran at 60.7-62.0 images/s (V8's default GC),
 * with 2 each at 56.7, and one process on both cores at 57.3-59.6 in the same runs
 * (bench/results/cpu-distributed-threads-2026-12-05.txt).
 */
export function colocatedThreads(cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 2));
}

/**
 * Node.js flags for a CPU worker whose kernels run on its own thread (`--threads 1`): V8's garbage collector
 * on that thread too (`--single-threaded-gc`), instead of helper threads that take time on the cores the
 * other worker computes on, so that one of the two falls behind and the other waits at the next crossing.
 * On 2 cores, cifar batch 64, two such workers ran at 65.8-66.7 images/s with it and 61.5-62.8 without,
 * 1.12-1.15x the one process on both cores against 1.05-1.08x (bench/results/cpu-distributed-gc-2026-12-05.txt).
 * A worker with a pool of kernel threads keeps V8's default (its main thread is not the one computing), and
 * ALEXNET_SINGLE_THREADED_GC=0 keeps it for all (for comparison).
 */
export function workerNodeFlags(threads: number | null, env: NodeJS.ProcessEnv = process.env): string[] {
  return threads === 1 && env.ALEXNET_SINGLE_THREADED_GC !== '0' ? ['--single-threaded-gc'] : [];
}

/** What launch prints about the CPU workers' threads. */
export function threadsLine(threads: number, given: boolean, cores = os.availableParallelism(), env: NodeJS.ProcessEnv = process.env): string {
  const why = given ? '--threads' : cores < 2 ? 'at least one each; --threads N to choose' : 'half the cores each; --threads N to choose';
  const gc = workerNodeFlags(threads, env).length > 0 ? ', garbage collection on that thread too (node --single-threaded-gc)' : '';
  return `this machine's ${cores} CPU core${cores === 1 ? '' : 's'}: ${threads} kernel thread${threads === 1 ? '' : 's'} for each worker (${why})${gc}`;
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

export interface CpuPlan {
  /** `--cpus` for worker 0 and worker 1; null: the workers are not pinned. */
  readonly cpus: readonly [string, string] | null;
  /** What launch prints about it; null when there is nothing to say (GPU workers, or --no-pin-cpus). */
  readonly line: string | null;
}

/** What planCpus asks of the host, each only when it gets that far (a GPU launch asks nothing); tests give their own. */
export interface CpuHost {
  /** The OS (default process.platform): elsewhere than Linux there is nothing to choose, and nothing is said. */
  readonly platform?: NodeJS.Platform;
  /** Why pinning cannot be done on this Linux host, null where it can (default pinningUnavailable: taskset installed?). */
  readonly unavailable?: () => string | null;
  /** The CPUs this process may run on (default allowedCpus). */
  readonly allowed?: () => readonly number[] | null;
  /** The two workers' halves of them (default cpuHalves). */
  readonly halvesOf?: (allowed: readonly number[]) => [number[], number[]] | null;
  /** Why a process could not be started on those CPUs, tried once (default pinningRefused), null when it can. */
  readonly refused?: (cpus: readonly number[]) => string | null;
}

/**
 * The cores of two CPU workers on one host (cpu-affinity.ts): worker 0 the first half of the cores this
 * process may run on, worker 1 the second (cpuHalves), unless `pin` is false or they are not on CPUs.
 */
export function planCpus(onCpu: boolean, pin: boolean, host: CpuHost = {}): CpuPlan {
  if (!onCpu || !pin) return { cpus: null, line: null };
  // elsewhere than Linux there is nothing to choose: said only where the user could change it
  const platform = host.platform ?? process.platform;
  if (platform !== 'linux') return { cpus: null, line: null };
  const unavailable = (host.unavailable ?? (() => pinningUnavailable(platform)))();
  if (unavailable) return { cpus: null, line: `workers not pinned to cores: ${unavailable}` };
  const allowed = (host.allowed ?? allowedCpus)();
  const halvesOf = host.halvesOf ?? ((a: readonly number[]) => cpuHalves(a));
  const refused = host.refused ?? pinningRefused;
  const halves = allowed ? halvesOf(allowed) : null;
  if (!halves) return { cpus: null, line: `workers not pinned to cores: ${allowed ? `this process may run on ${allowed.length} CPU only` : 'the CPUs this process may run on are not known'}` };
  const no = refused(halves[0]);
  if (no) return { cpus: null, line: `workers not pinned to cores: ${no}` };
  const [c0, c1] = [formatCpuList(halves[0]), formatCpuList(halves[1])];
  const cpu = (l: number[]) => `CPU${l.length === 1 ? '' : 's'}`;
  return {
    cpus: [c0, c1],
    line: `worker 0 on ${cpu(halves[0])} ${c0}, worker 1 on ${cpu(halves[1])} ${c1} (cores of their own: a worker woken by its peer's tensor is not queued behind the peer's compute; --no-pin-cpus leaves them to the scheduler)`,
  };
}

/** A CPU worker's `--threads` and `--cpus` (worker `tower`'s half of the cores), as launch and the benchmarks give them; none where null. */
export function cpuWorkerArgs(tower: number, threads: number | null, cpus: readonly [string, string] | null): string[] {
  return [...(threads === null ? [] : ['--threads', String(threads)]), ...(cpus ? ['--cpus', cpus[tower]!] : [])];
}
