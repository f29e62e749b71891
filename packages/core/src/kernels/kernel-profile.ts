/**
 * Time per kernel, for the benchmarks' --profile and their launch count: per name, calls, milliseconds and
 * result bytes, and besides the kernels the device's uploads and read-backs.
 *
 * By default a row is the wall time of the calls, which overlap where the two towers of one process run side
 * by side, and on webgpu a call only records and submits its work: the GPU's time lands on whatever waits for
 * it next (a read-back, usually). With `exclusive`, every profiled operation runs alone: it starts once the
 * one before it has finished (on webgpu, once the GPU queue is empty) and is timed until its own work is done
 * (on webgpu, until the queue is empty again), so that each row is that operation's own time, on webgpu its
 * GPU time with its submission. The operations then no longer overlap: a step profiled so is slower than
 * an unprofiled one, and the benchmark times it apart from the timed steps.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What a row is: a gpu.js kernel call (a launch), a host array copied to the device, a result copied back, or
 * (exclusive profiles on webgpu) the waits for an empty GPU queue before each operation, in one row.
 */
export type ProfileKind = 'kernel' | 'upload' | 'read-back' | 'queue';

/** The row of an exclusive profile's waits before each operation (ProfileKind 'queue'). */
export const QUEUE_WAIT_ROW = 'waits for an empty queue';

export interface KernelProfileEntry {
  kind: ProfileKind;
  calls: number;
  ms: number;
  bytes: number;
  /** Every call's result lands in the same buffer (KernelOptions.reuseOutput). */
  reused: boolean;
  /** Each call was timed alone, until its work was done (KernelProfileOptions.exclusive); on webgpu, with the GPU queue drained. */
  exclusive: boolean;
}

/** Waits until the GPU has done everything submitted so far; null where calls are synchronous (webasm, cpu). */
export type QueueDrain = (() => Promise<void>) | null;

export interface KernelProfileOptions {
  /** Each operation runs and is timed alone, until its work is done (see above). */
  readonly exclusive?: boolean;
}

let profile: Map<string, KernelProfileEntry> | null = null;
let exclusive = false;
/** exclusive: settles when the operation running now has been timed. */
let running: Promise<void> = Promise.resolve();
/** Set inside an exclusive operation: a profiled() call from there would wait for itself. */
const insideOperation = new AsyncLocalStorage<string>();

/** Starts a new profile (the previous one is dropped). */
export function startKernelProfile(opts: KernelProfileOptions = {}): void {
  profile = new Map();
  exclusive = opts.exclusive === true;
}

/** Ends the profile: nothing more is recorded, and kernelProfile() is empty until the next start. */
export function stopKernelProfile(): void {
  profile = null;
}

/** The rows of the profile so far, slowest first. */
export function kernelProfile(): ({ name: string } & KernelProfileEntry)[] {
  return [...(profile ?? new Map<string, KernelProfileEntry>()).entries()].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
}

/** Kernel calls (launches) in a profile's rows: uploads and read-backs are not counted. */
export function launchCount(rows: readonly { kind: ProfileKind; calls: number }[]): number {
  return rows.reduce((a, r) => a + (r.kind === 'kernel' ? r.calls : 0), 0);
}

/**
 * Runs `op`, recording it under `name` when a profile is on. `drain`: the device's queue drain (webgpu), which
 * an exclusive profile waits on before and after the operation. `op` must not itself call profiled().
 */
export async function profiled<T>(name: string, kind: ProfileKind, bytes: number, reused: boolean, drain: QueueDrain, op: () => Promise<T>): Promise<T> {
  if (!profile) return op();
  const p = profile;
  const alone = exclusive;
  let release = () => {};
  if (alone) {
    const outer = insideOperation.getStore();
    if (outer !== undefined) throw new Error(`profiled ${name} inside profiled ${outer}: an exclusive profile would wait for ever (an operation must not start another)`);
    const before = running;
    running = new Promise<void>((resolve) => {
      release = resolve;
    });
    await before;
  }
  try {
    if (alone && drain) {
      // usually empty already (the operation before drained it): the time is that of asking, kept apart
      const tq = performance.now();
      await drain();
      record(p, QUEUE_WAIT_ROW, 'queue', 0, false, true, performance.now() - tq);
    }
    const t0 = performance.now();
    const r = alone ? await insideOperation.run(name, op) : await op();
    if (alone && drain) await drain();
    record(p, name, kind, bytes, reused, alone, performance.now() - t0);
    return r;
  } finally {
    release();
  }
}

function record(p: Map<string, KernelProfileEntry>, name: string, kind: ProfileKind, bytes: number, reused: boolean, alone: boolean, ms: number): void {
  const e = p.get(name) ?? { kind, calls: 0, ms: 0, bytes: 0, reused, exclusive: alone };
  e.calls++;
  e.ms += ms;
  e.bytes += bytes;
  p.set(name, e);
}
