/**
 * A worker whose GPU device is lost (a driver reset, a GPU fallen off the bus: here gpu.js's device destroyed
 * under the worker, test/fixtures/lose-gpu-device.mjs) cannot go on: its parameters and momentum lived on the
 * device. The worker command says so and exits with code 75; `alexnet launch` starts it again and the
 * coordinator resumes from the run's latest checkpoint, with the losses of an uninterrupted run. A worker
 * started as a library (startWorker) stays up, FAILED, and refuses to be configured, saying why.
 * webgpu only (ALEXNET_TEST_BACKEND=webgpu: the software adapter of scripts/lavapipe.sh in `npm test`).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { tiny, type DeviceLoss } from '@alexnet-mp/core';
import { startWorker, type RunningWorker } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';
import { alexnet, gpujsDevice, losingGpuDevice, runEvents, stepLosses, tempDir } from './helpers.js';

const webgpu = process.env.ALEXNET_TEST_BACKEND === 'webgpu' ? test.serial : test.skip;

const run = ['launch', '--preset', 'tiny', '--backend', 'webgpu', '--batch', '8', '--seed', '4', '--steps', '8', '--checkpoint-every', '2', '--max-restarts', '2'];

webgpu('the worker command exits (code 75) when its GPU device is lost; launch starts it again and the run resumes from its checkpoint with the losses of an uninterrupted run', async (t) => {
  const straight = tempDir(t, 'alexnet-device-lost-');
  const lost = tempDir(t, 'alexnet-device-lost-');
  const marker = path.join(lost, 'device-lost-by');
  const a = alexnet([...run, '--run-dir', straight]);
  t.is((await a.exited).code, 0, a.output());
  const env = { ...process.env, ...losingGpuDevice(marker, 200) };
  const b = alexnet([...run, '--run-dir', lost], { env });
  t.is((await b.exited).code, 0, b.output());
  t.true(fs.existsSync(marker), 'a device was lost');
  const out = b.output();
  t.regex(out, /\[worker[01]\] alexnet worker [01]: the GPU device was lost \(destroyed/);
  t.regex(out, /\[worker[01]\] alexnet worker [01]: exiting with code 75 so that it can be started again/);
  t.regex(out, /\[launch\] restarting worker[01] on 127\.0\.0\.1:\d+ \(restart 1 of 2\)/);
  const restarts = runEvents(lost).filter((e) => e.event === 'restart');
  t.is(restarts.length, 1, JSON.stringify(restarts));
  // the 200th submit of a worker falls after the first checkpoint (step 2): the run resumes from a checkpoint
  t.log(`restart: ${JSON.stringify(restarts[0])}`);
  t.truthy(restarts[0]!.checkpoint, 'resumed from a checkpoint, not from step 0');
  t.deepEqual(stepLosses(lost), stepLosses(straight), 'every step, those done again after the restart included, as in the uninterrupted run');
  t.is(stepLosses(lost).length, 8);
});

webgpu('a worker started as a library stays up when its GPU device is lost: FAILED, saying why, and it refuses Configure', async (t) => {
  const told: DeviceLoss[] = [];
  const ws: RunningWorker[] = [];
  for (const tower of [0, 1] as const) ws.push(await startWorker({ spec: tiny, tower, backend: 'webgpu', port: 0, maxBatch: 8, onDeviceLost: (loss) => told.push(loss) }));
  t.teardown(() => Promise.all(ws.map((w) => w.close())));
  const options = { spec: tiny, workers: [ws[0]!.address, ws[1]!.address] as [string, string], batch: 8, seed: 2, hyper: { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 }, source: new SyntheticSource(tiny, 2) };
  const c = new Coordinator(options);
  t.teardown(() => c.close());
  await c.start();
  await c.run(2, () => {});
  // the device both workers of this process share (gpu.js has one), taken away
  (await gpujsDevice()).destroy();
  // Dawn's callbacks come on its next polls: up to 10 s on a loaded machine
  for (let i = 0; i < 1000 && told.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(
    told.map((l) => l.reason),
    ['destroyed', 'destroyed'],
  );
  const status = await Promise.all(c.clients.map((w) => w.status()));
  t.deepEqual(
    status.map((s) => s.state),
    ['FAILED', 'FAILED'],
  );
  t.regex(status[0]!.last_error, /^the GPU device was lost \(destroyed/);
  const again = new Coordinator({ ...options, takeOver: true });
  t.teardown(() => again.close());
  const e = await t.throwsAsync(again.start());
  t.regex(e!.message, /could not be configured: tower [01]: the GPU device was lost \(destroyed.*\): this worker cannot train any more; start it again/);
});
