/**
 * Which CPU cores a worker process runs on (`worker --cpus LIST`, and launch's halves for two CPU workers).
 *
 * Two CPU workers on one host compute at the same time and hand each other tensors a few times a step.
 * Left to the Linux scheduler, the worker woken by its peer's tensor is often queued on the core where the
 * peer keeps computing (wake-affine placement) and reads the tensor only when that core is preempted or
 * idles: on 2 cores a tensor that reaches an idle worker in 0.3-0.6 ms then takes 2-3 ms one time in
 * ten or more. Pinned to cores of their own, the two never share one.
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

/** The two halves of `allowed` for two workers (worker 0 the lower CPUs); null with fewer than 2 CPUs. An odd one out is left to the rest (the coordinator). */
export function cpuHalves(allowed: readonly number[]): [number[], number[]] | null {
  const k = Math.floor(allowed.length / 2);
  if (k < 1) return null;
  return [allowed.slice(0, k), allowed.slice(k, 2 * k)];
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
    const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim();
    throw new CpuAffinityError(`${what} ${list}: taskset failed${stderr ? `: ${stderr.split('\n')[0]}` : ''}`);
  }
}
