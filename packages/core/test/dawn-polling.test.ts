/**
 * Dawn's polling paced (dawn-polling.ts): a poll that schedules the next from inside itself, as Dawn's
 * AsyncRunner does while it waits for the GPU, sleeps before each poll once the wait is half a millisecond
 * old; every other setImmediate is Node's. The poll here is a stand-in: a callable Proxy, which reads as a
 * nameless native function without parameters, as Dawn's does. dawn-polling-installed.test.ts checks
 * Dawn's own polls on a WebGPU adapter.
 */
import test from 'ava';
import { promisify } from 'node:util';
import { EnvSettingError } from '../src/env-setting-error.js';
import { FIRST_SLEEP_MS, MAX_SLEEP_MS, SPIN_MS, dawnPollCount, dawnPollingFromEnv, isDawnPoll, paceDawnPolling } from '../src/dawn-polling.js';

/** The times of a stand-in wait's polls, until `late` of them came after the first SPIN_MS. */
function standInWait(late: number): Promise<number[]> {
  const times: number[] = [];
  return new Promise((resolve, reject) => {
    const poll: () => void = new Proxy(function () {
      const now = performance.now();
      times.push(now);
      if (now - times[0]! > 3000) reject(new Error(`${times.length} polls in 3 s`));
      else if (times.filter((x) => x - times[0]! > SPIN_MS).length < late) setImmediate(poll);
      else resolve(times);
    }, {});
    setImmediate(poll);
  });
}

test.serial('a poll that schedules itself again sleeps between polls after the first half millisecond, 50 us doubling to 0.25 ms', async (t) => {
  paceDawnPolling({});
  t.true(isDawnPoll(new Proxy(function () {}, {}), 0), "the stand-in reads as Dawn's poll");
  const times = await standInWait(8);
  // each gap that ends after the spin started with a sleep; Atomics.wait sleeps at least its timeout
  const late = times.slice(1).map((x, i) => ({ at: x - times[0]!, gap: x - times[i]! })).filter((g) => g.at - g.gap > SPIN_MS);
  t.true(late.length >= 6, `${late.length} gaps begun after the spin`);
  t.true(late.every((g) => g.gap >= FIRST_SLEEP_MS * 0.9), `gaps after the spin: ${late.map((g) => g.gap.toFixed(3)).join(' ')} ms`);
  t.true(late.at(-1)!.gap >= MAX_SLEEP_MS * 0.9, `the last gap ${late.at(-1)!.gap.toFixed(3)} ms has reached the longest sleep`);
});

test.serial("every other setImmediate is Node's: a promise's resolve, arguments, promisify, a named or bound function", async (t) => {
  paceDawnPolling({});
  const before = dawnPollCount();
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  t.is(dawnPollCount(), before, 'setImmediate(resolve) is no poll');
  t.is(await new Promise((resolve) => setImmediate((a: unknown, b: unknown) => resolve([a, b]), 1, 2)).then((x) => JSON.stringify(x)), '[1,2]');
  t.is(await promisify(setImmediate)('value'), 'value');
  t.false(isDawnPoll(Math.max, 0), 'a named native function');
  t.false(isDawnPoll(function () {}.bind(null), 0), 'a bound function');
  t.false(isDawnPoll(() => {}, 0), 'a JavaScript function');
  t.false(isDawnPoll(new Proxy(function (x: unknown) { return x; }, {}), 0), 'a native function with a parameter (a resolve)');
  t.false(isDawnPoll(new Proxy(function () {}, {}), 1), 'called with arguments');
});

test('ALEXNET_DAWN_POLL: paced by default, spin leaves Dawn alone, anything else is an error naming the variable', (t) => {
  t.is(dawnPollingFromEnv({}), 'paced');
  t.is(dawnPollingFromEnv({ ALEXNET_DAWN_POLL: 'paced' }), 'paced');
  t.is(dawnPollingFromEnv({ ALEXNET_DAWN_POLL: 'spin' }), 'spin');
  const e = t.throws(() => dawnPollingFromEnv({ ALEXNET_DAWN_POLL: 'fast' }), { instanceOf: EnvSettingError });
  t.regex(e!.message, /^ALEXNET_DAWN_POLL=fast: /);
});
