/**
 * Dawn's Node bindings (the `webgpu` package) learn that the GPU has finished something by polling: while a
 * `mapAsync` or `onSubmittedWorkDone` is pending they run `ProcessEvents` from a `setImmediate` that
 * schedules the next one (Dawn's `AsyncRunner::ScheduleProcessEvents`, which looks the global `setImmediate`
 * up at each call, and makes a new function for each). The thread waiting for the GPU therefore runs flat
 * out for the whole wait and makes garbage as it goes: a read-back behind a second of GPU work took 580-780 ms
 * of its CPU on 2 cores, where the rest went to the GPU work itself (Mesa's lavapipe), against 60-90 ms paced
 * (`bench/readback-wait.ts`). A worker waits for the GPU at every crossing: a core lost to the data pipeline,
 * the peer or, on a software adapter, the GPU.
 *
 * `paceDawnPolling` keeps the first half millisecond of a wait as it is (a short wait ends as soon as
 * before) and then sleeps before each poll, 50 us at first and doubling up to 0.25 ms, so a long wait costs
 * a tenth of a core or so and ends at most 0.25 ms late. The GPU does not wait for the polls: they only
 * notice that it is done. The sleep holds the event loop too (a socket's data waits up to 0.25 ms longer
 * while the thread waits for the GPU). Dawn's poll callbacks are recognised as native functions without a
 * name or parameters passed to `setImmediate` with no arguments (a promise's resolve function, also native
 * and nameless, has one parameter); everything else goes to Node's `setImmediate` untouched.
 * `ALEXNET_DAWN_POLL=spin` leaves Dawn's polling as it is.
 */

import { EnvSettingError } from './env-setting-error.js';

/** How long a wait polls without sleeping, ms. */
export const SPIN_MS = 0.5;
/** The first and the longest sleep before a poll, ms. */
export const FIRST_SLEEP_MS = 0.05;
export const MAX_SLEEP_MS = 0.25;

type Immediate = (callback: (...args: unknown[]) => void, ...args: unknown[]) => NodeJS.Immediate;

let installed = false;
let polls = 0;

/** Dawn polls run through the pacing so far (0 when it is not installed). */
export function dawnPollCount(): number {
  return polls;
}

/** Whether `fn` is what Dawn hands to setImmediate: a native function without a name or parameters. */
export function isDawnPoll(fn: unknown, argCount: number): boolean {
  return typeof fn === 'function' && argCount === 0 && fn.name === '' && fn.length === 0 && Function.prototype.toString.call(fn).endsWith('{ [native code] }');
}

/** How polling is paced: `ALEXNET_DAWN_POLL` (paced, the default, or spin); another value is an EnvSettingError. */
export function dawnPollingFromEnv(env: NodeJS.ProcessEnv = process.env): 'paced' | 'spin' {
  const v = env.ALEXNET_DAWN_POLL;
  if (v === undefined || v === '' || v === 'paced') return 'paced';
  if (v === 'spin') return 'spin';
  throw new EnvSettingError(`ALEXNET_DAWN_POLL=${v}: give paced (the default) or spin`);
}

/** Whether the pacing is installed in this process. */
export function dawnPollingPaced(): boolean {
  return installed;
}

/** Paces Dawn's polling in this process (once; see above). No effect with ALEXNET_DAWN_POLL=spin. */
export function paceDawnPolling(env: NodeJS.ProcessEnv = process.env): void {
  if (installed || dawnPollingFromEnv(env) === 'spin') return;
  installed = true;
  const original = globalThis.setImmediate as unknown as Immediate;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  /** Whether a Dawn poll is running: a setImmediate from inside it continues that wait. */
  let inPoll = false;
  let waitStart = 0;
  let sleepMs = FIRST_SLEEP_MS;
  const paced = function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]): NodeJS.Immediate {
    if (!isDawnPoll(callback, args.length)) return original(callback, ...args);
    if (!inPoll) {
      // a new wait (a first pending operation), not the next poll of one
      waitStart = performance.now();
      sleepMs = FIRST_SLEEP_MS;
    }
    return original(() => {
      if (performance.now() - waitStart >= SPIN_MS) {
        Atomics.wait(sleeper, 0, 0, sleepMs);
        sleepMs = Math.min(2 * sleepMs, MAX_SLEEP_MS);
      }
      polls++;
      inPoll = true;
      try {
        callback();
      } finally {
        inPoll = false;
      }
    });
  };
  // util.promisify(setImmediate) and the like read properties of the function itself
  Object.defineProperties(paced, Object.getOwnPropertyDescriptors(original));
  (globalThis as unknown as { setImmediate: Immediate }).setImmediate = paced;
}
