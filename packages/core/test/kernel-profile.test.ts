import test from 'ava';
import { QUEUE_WAIT_ROW, kernelProfile, launchCount, profiled, startKernelProfile, stopKernelProfile } from '../src/kernels/kernel-profile.js';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { tiny } from '../src/model/presets.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend } from './helpers.js';

// the profile is one per process: these tests take turns
test.serial('an exclusive profile runs operations one at a time, the queue drained before and after each; a plain one lets them overlap', async (t) => {
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const run = async (exclusive: boolean) => {
    let drains = 0;
    const drain = async () => {
      drains++;
    };
    let active = 0;
    let most = 0;
    const op = (ms: number) => async () => {
      most = Math.max(most, ++active);
      await sleep(ms);
      active--;
      return ms;
    };
    startKernelProfile({ exclusive });
    const results = await Promise.all([profiled('a', 'kernel', 16, false, drain, op(30)), profiled('b', 'upload', 8, false, drain, op(30)), profiled('a', 'kernel', 16, false, drain, op(30))]);
    const rows = kernelProfile();
    stopKernelProfile();
    return { results, rows, drains, most };
  };
  const alone = await run(true);
  t.deepEqual(alone.results, [30, 30, 30], 'each call gives its own result');
  t.is(alone.most, 1, 'never two operations at once');
  t.is(alone.drains, 6, 'two drains per operation');
  t.like(alone.rows.find((r) => r.name === QUEUE_WAIT_ROW), { kind: 'queue', calls: 3 }, 'the waits before each operation, in a row of their own');
  const a = alone.rows.find((r) => r.name === 'a')!;
  t.like(a, { kind: 'kernel', calls: 2, bytes: 32, exclusive: true });
  t.true(a.ms >= 55, `two 30 ms calls timed alone: ${a.ms} ms`);
  t.is(launchCount(alone.rows), 2, 'uploads are not launches');

  const plain = await run(false);
  t.is(plain.most, 3, 'without exclusive the three run side by side');
  t.is(plain.drains, 0);
  t.false(plain.rows.find((r) => r.name === 'a')!.exclusive);
  t.false(plain.rows.some((r) => r.kind === 'queue'));
  t.deepEqual(kernelProfile(), [], 'nothing is recorded after stopKernelProfile');
});

test.serial('an exclusive operation that fails, or whose queue drain fails, lets the next one run; one started inside another is refused', async (t) => {
  startKernelProfile({ exclusive: true });
  t.teardown(stopKernelProfile);
  const ok = async () => 'ok';
  await t.throwsAsync(profiled('bad', 'kernel', 4, false, null, async () => {
    throw new Error('kernel failed');
  }), { message: 'kernel failed' });
  await t.throwsAsync(profiled('a', 'kernel', 4, false, async () => {
    throw new Error('device lost');
  }, ok), { message: 'device lost' });
  t.is(await profiled('next', 'kernel', 4, false, null, ok), 'ok', 'the lock was released both times');
  await t.throwsAsync(profiled('outer', 'kernel', 4, false, null, () => profiled('inner', 'upload', 4, false, null, ok)), { message: /profiled inner inside profiled outer/ });
  t.is(await profiled('after', 'kernel', 4, false, null, ok), 'ok');
  t.deepEqual(kernelProfile().map((r) => r.name).sort(), ['after', 'next']);
});

test.serial(`a training step profiled exclusively (${testBackend}): every kernel, upload and read-back in its rows, their times within the step's`, async (t) => {
  const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 8, seed: 3 });
  t.teardown(() => tr.destroy());
  const b = syntheticBatch(8, tiny.inputSize, 4);
  await tr.trainStep(b);
  // the launches of a plain profile, for comparison
  startKernelProfile();
  await tr.trainStep(b);
  const launches = launchCount(kernelProfile());
  const readbacks0 = tr.devices.map((d) => d.readbacks);
  startKernelProfile({ exclusive: true });
  const t0 = performance.now();
  await tr.trainStep(b);
  const stepMs = performance.now() - t0;
  const rows = kernelProfile();
  stopKernelProfile();
  t.true(rows.length > 20, `${rows.length} rows`);
  t.true(rows.every((r) => r.exclusive && r.calls > 0 && r.ms >= 0));
  t.is(launchCount(rows), launches, 'the same kernel calls as an unprofiled step');
  t.true(rows.some((r) => r.name === 'conv1.gemm' && r.kind === 'kernel'));
  const readbacks = tr.devices.reduce((a, d, i) => a + d.readbacks - readbacks0[i]!, 0);
  t.is(rows.find((r) => r.name === 'read-back')?.calls ?? 0, readbacks, 'every read-back of the step');
  if (testBackend === 'webgpu') {
    t.true((rows.find((r) => r.name === 'upload')?.calls ?? 0) > 0, 'uploads are rows too');
    t.is(rows.find((r) => r.kind === 'queue')?.calls, rows.filter((r) => r.kind !== 'queue').reduce((a, r) => a + r.calls, 0), 'one wait for an empty queue before each operation');
  } else t.false(rows.some((r) => r.kind === 'queue'), 'nothing to wait for on the CPU');
  const sum = rows.reduce((a, r) => a + r.ms, 0);
  t.true(sum <= stepMs + 1, `operations timed alone do not overlap: ${sum.toFixed(1)} ms of a ${stepMs.toFixed(1)} ms step`);
});
