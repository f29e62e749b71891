/**
 * Which CPU cores a worker process runs on (`worker --cpus LIST`, and launch's halves for two CPU workers).
 *
 * Two CPU workers on one host compute at the same time and hand each other tensors a few times a step.
 * Left to the Linux scheduler, the worker woken by its peer's tensor is often queued on the core where the
 * peer keeps computing (wake-affine placement) and reads the tensor only when that core is preempted or
 * idles: on 2 cores a tensor that reaches an idle receiver in 0.21-0.23 ms (median) takes 1.5 ms or more
 * one time in ten, and at most 0.31-0.33 ms nine times in ten with the two on cores of their own
 * (bench/stream-latency.ts, bench/results/stream-latency-2026-12-05.txt). Pinned, the two never share one.
 * The halves are of whole cores: the hardware threads of one core (SMT siblings, which Linux usually numbers
 * far apart) go to the same worker, and one package's cores before the next's.
 *
 * Linux only: the affinity is set with util-linux's `taskset` (sched_setaffinity on every thread of the
 * process; threads started later inherit it). Node.js has no call for it, and a native addon would need
 * a compiler at install; `taskset` is part of every Debian and Ubuntu system (package util-linux).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** A refused or failed `--cpus`, in one line for the user. */
export class CpuAffinityError extends Error {
  override name = 'CpuAffinityError';
}

/** `0-3,6` -> [0, 1, 2, 3, 6] (sorted, without repeats); anything else is a CpuAffinityError naming `what`. */
export function parseCpuList(text: string, what = '--cpus'): number[] {
  const cpus = new Set<number>();
  const parts = text.trim() === '' ? [] : text.split(',');
  for (const part of parts) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || !Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo || hi - lo > 65535) {
      throw new CpuAffinityError(`${what} ${text}: give CPU numbers and ranges separated by commas, e.g. 0-3 or 0,2`);
    }
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  if (cpus.size === 0) throw new CpuAffinityError(`${what} ${JSON.stringify(text)}: give at least one CPU, e.g. 0 or 0-3`);
  return [...cpus].sort((a, b) => a - b);
}

/** [0, 1, 2, 3, 6] -> "0-3,6". */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The CPUs this process may run on (Linux: Cpus_allowed_list of /proc/self/status); null where that is not known. */
export function allowedCpus(status: () => string = () => fs.readFileSync('/proc/self/status', 'utf8')): number[] | null {
  try {
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(status());
    return m ? parseCpuList(m[1]!, 'Cpus_allowed_list') : null;
  } catch {
    return null;
  }
}

/** Where a CPU lies: its package (socket) and the CPUs of its core (itself and its SMT siblings). */
export interface CpuPlace {
  readonly pkg: number;
  readonly core: readonly number[];
}

/** A CPU's place from Linux's sysfs topology; null where that is not readable (each CPU then counts as a core of its own). */
export function cpuPlace(cpu: number, read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8')): CpuPlace | null {
  const dir = `/sys/devices/system/cpu/cpu${cpu}/topology`;
  try {
    const pkg = Number(read(`${dir}/physical_package_id`).trim());
    let siblings: string;
    try {
      siblings = read(`${dir}/core_cpus_list`);
    } catch {
      siblings = read(`${dir}/thread_siblings_list`); // kernels before 5.x
    }
    return { pkg: Number.isInteger(pkg) ? pkg : 0, core: parseCpuList(siblings.trim(), 'core_cpus_list') };
  } catch {
    return null;
  }
}

/**
 * The two halves of `allowed` for two workers, worker 0 the first: whole cores (a core's allowed SMT siblings
 * stay together), ordered by package, then by their lowest CPU; with fewer than two cores, the CPUs themselves.
 * An odd core is used by neither worker. Null with fewer than 2 CPUs.
 */
export function cpuHalves(allowed: readonly number[], place: (cpu: number) => CpuPlace | null = (c) => cpuPlace(c)): [number[], number[]] | null {
  const ok = new Set(allowed);
  const cores = new Map<string, { pkg: number; cpus: number[] }>();
  for (const c of allowed) {
    const p = place(c);
    const cpus = p ? p.core.filter((x) => ok.has(x)) : [c];
    const key = `${p?.pkg ?? 0}/${cpus.join(',')}`;
    if (!cores.has(key)) cores.set(key, { pkg: p?.pkg ?? 0, cpus: cpus.includes(c) ? cpus : [c] });
  }
  const units = [...cores.values()].sort((a, b) => a.pkg - b.pkg || a.cpus[0]! - b.cpus[0]!).map((u) => u.cpus);
  // one core with two hardware threads (or CPUs whose topology is unknown): a thread each
  const parts = units.length >= 2 ? units : allowed.map((c) => [c]);
  const k = Math.floor(parts.length / 2);
  if (k < 1) return null;
  return [parts.slice(0, k).flat().sort((a, b) => a - b), parts.slice(k, 2 * k).flat().sort((a, b) => a - b)];
}

/** Why this host cannot pin processes to CPUs; null when it can (Linux with `taskset`). */
export function pinningUnavailable(platform: NodeJS.Platform = process.platform, hasTaskset: () => boolean = tasksetInstalled): string | null {
  if (platform !== 'linux') return `pinning to CPUs is done on Linux only (this is ${platform})`;
  if (!hasTaskset()) return 'pinning to CPUs needs taskset (util-linux), which is not installed';
  return null;
}

function tasksetInstalled(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a process could not be started on `cpus` here, tried once with `taskset -c LIST true` (a container's
 * seccomp profile or cpuset may refuse what Cpus_allowed_list seems to allow); null when it can.
 */
export function pinningRefused(cpus: readonly number[]): string | null {
  try {
    execFileSync('taskset', ['-c', formatCpuList(cpus), 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return null;
  } catch (e) {
    const why = firstStderrLine(e);
    return `taskset could not set the affinity${why ? ` (${why})` : ''}`;
  }
}

/**
 * Pins every thread of this process to `cpus` (threads started later inherit it); `cpus` must be a subset of
 * what the process may run on. Throws a CpuAffinityError saying why it cannot.
 */
export function pinThisProcess(cpus: readonly number[], what = '--cpus'): void {
  const list = formatCpuList(cpus);
  const why = pinningUnavailable();
  if (why) throw new CpuAffinityError(`${what} ${list}: ${why}`);
  const allowed = allowedCpus();
  const outside = allowed ? cpus.filter((c) => !allowed.includes(c)) : [];
  if (allowed && outside.length > 0) {
    throw new CpuAffinityError(`${what} ${list}: this process may run on CPU${allowed.length === 1 ? '' : 's'} ${formatCpuList(allowed)} only (not ${formatCpuList(outside)})`);
  }
  try {
    execFileSync('taskset', ['-a', '-p', '-c', list, String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const why = firstStderrLine(e);
    throw new CpuAffinityError(`${what} ${list}: taskset failed${why ? `: ${why}` : ''} (alexnet launch: --no-pin-cpus leaves the workers unpinned)`);
  }
}

/** The first line of what a failed execFileSync wrote on stderr ('' if nothing). */
function firstStderrLine(e: unknown): string {
  return String((e as { stderr?: Buffer }).stderr ?? '').trim().split('\n')[0]!;
}
