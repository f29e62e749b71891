/**
 * Dawn's polling paced (dawn-polling.ts): a poll that schedules the next from inside itself, as Dawn's
 * AsyncRunner does while it waits for the GPU, sleeps before each poll once the wait is half a millisecond
 * old; every other setImmediate is Node's. The poll here is a stand-in: a callable Proxy, which reads as a
 * nameless native function as Dawn's does. On webgpu (ALEXNET_TEST_BACKEND=webgpu) Dawn's own polls are
 * recognised.
 */
import test from 'ava';
import { promisify } from 'node:util';
import { FIRST_SLEEP_MS, MAX_SLEEP_MS, SPIN_MS, dawnPollCount, dawnPollingFromEnv, isDawnPoll, paceDawnPolling } from '../src/dawn-polling.js';
import { Device } from '../src/device.js';
import { testBackend } from './helpers.js';

test.serial('a poll that schedules itself again sleeps between polls after the first half millisecond, up to 0.5 ms', async (t) => {
  paceDawnPolling({});
  const times: number[] = [];
  await new Promise<void>((resolve) => {
    const poll: () => void = new Proxy(function () {
      times.push(performance.now());
      if (performance.now() - times[0]! < 8) setImmediate(poll);
      else resolve();
    }, {});
    t.true(isDawnPoll(poll, 0), 'the stand-in reads as Dawn\'s poll');
    setImmediate(poll);
  });
  const gaps = times.slice(1).map((x, i) => ({ at: times[i]! - times[0]!, gap: x - times[i]! }));
  const late = gaps.filter((g) => g.at > SPIN_MS + 0.1);
  t.true(late.length >= 3, `${late.length} polls after the first ${SPIN_MS} ms`);
  // Atomics.wait sleeps at least its timeout (allow for the clock's rounding)
  t.true(late.every((g) => g.gap >= FIRST_SLEEP_MS * 0.9), `gaps after the spin: ${late.map((g) => g.gap.toFixed(3)).join(' ')}`);
  t.true(late.at(-1)!.gap >= MAX_SLEEP_MS * 0.9, `the last gap ${late.at(-1)!.gap.toFixed(3)} ms has reached the longest sleep`);
  // a busy poll would have run thousands of times in 8 ms
  t.true(times.length < 400, `${times.length} polls in 8 ms`);
});

test.serial('every other setImmediate is untouched: arguments, promisify, a named or bound function', async (t) => {
  paceDawnPolling({});
  t.is(await new Promise((resolve) => setImmediate((a: unknown, b: unknown) => resolve([a, b]), 1, 2)).then((x) => JSON.stringify(x)), '[1,2]');
  t.is(await promisify(setImmediate)('value'), 'value');
  t.false(isDawnPoll(Math.max, 0), 'a named native function');
  t.false(isDawnPoll(function () {}.bind(null), 0), 'a bound function');
  t.false(isDawnPoll(() => {}, 0), 'a JavaScript function');
  t.false(isDawnPoll(new Proxy(function () {}, {}), 1), 'called with arguments');
  t.is(dawnPollingFromEnv({}), 'paced');
  t.is(dawnPollingFromEnv({ ALEXNET_DAWN_POLL: 'spin' }), 'spin');
});

(testBackend === 'webgpu' ? test.serial : test.skip)("Dawn's own polls go through the pacing", async (t) => {
  const dev = await Device.create('webgpu');
  t.teardown(() => dev.destroy());
  const before = dawnPollCount();
  const up = await dev.upload(new Float32Array(4096).fill(2));
  t.is((await dev.toHost(up, 4096))[4095], 2);
  t.true(dawnPollCount() > before, 'the read-back was waited for by paced polls');
});
