/**
 * Dawn's own polls are paced once the process opens a WebGPU adapter (webgpu-adapter.ts installs
 * dawn-polling.ts when it loads Dawn): during a read-back behind a long GEMM the poll count stays near
 * what the sleeps allow, where Dawn alone polls flat out. webgpu only (ALEXNET_TEST_BACKEND=webgpu; the
 * software adapter of scripts/lavapipe.sh in `npm test`). Nothing else in this file installs the pacing.
 */
import test from 'ava';
import { MAX_SLEEP_MS, dawnPollCount, dawnPollingPaced } from '../src/dawn-polling.js';
import { Device } from '../src/device.js';
import { Gemm, gemmShape } from '../src/kernels/gemm.js';
import { testBackend } from './helpers.js';

(testBackend === 'webgpu' && process.env.ALEXNET_DAWN_POLL !== 'spin' ? test : test.skip)("opening an adapter paces Dawn's polls: a long read-back polls about once per sleep", async (t) => {
  t.false(dawnPollingPaced(), 'not installed before Dawn is loaded');
  const dev = await Device.create('webgpu');
  t.teardown(() => dev.destroy());
  t.true(dawnPollingPaced());
  const [M, N, K] = [256, 256, 4096];
  const g = new Gemm(dev, 'gemm', gemmShape(M, N, K));
  const a = await dev.upload(new Float32Array(M * K).fill(0.5));
  const b = await dev.upload(new Float32Array(K * N).fill(0.25));
  await dev.toHost(await g.run(a, b), M * N);
  const [polls, t0] = [dawnPollCount(), performance.now()];
  const c = await dev.toHost(await g.run(a, b), M * N);
  const ms = performance.now() - t0;
  t.is(c[0], 0.5 * 0.25 * K);
  const n = dawnPollCount() - polls;
  t.true(n > 0, "Dawn's polls went through the pacing");
  // paced: the spin's first half millisecond, then one poll per sleep (at most MAX_SLEEP_MS once backed off);
  // unpaced, Dawn polls every few microseconds
  t.true(n < 100 + (2 * ms) / MAX_SLEEP_MS, `${n} polls in a wait of ${ms.toFixed(0)} ms`);
  t.log(`${n} polls in a read-back of ${ms.toFixed(0)} ms`);
});
