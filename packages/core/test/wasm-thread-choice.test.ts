/**
 * gpu.js's webasm `threadChoice: 'measure'` (our patch, patches/README.md item 14): a kernel of 4,096 cells or
 * more runs its first calls of a size on the worker pool and then on the calling thread (three each), timed, and
 * keeps the faster (the calling thread only for runs of at most 0.25 ms). Both paths compute every cell the
 * same way: the results are bit for bit those of a kernel without threads, whichever path ran. The tests run
 * one at a time: a run on the calling thread in one would hold up the pool runs of another.
 */
import test from 'ava';
import { GPU } from 'gpu.js';
import { EnvSettingError, envSwitchOn } from '../src/env-setting-error.js';
import { wasmThreadChoice } from '../src/kernels/kernel-runner.js';

interface WasmKernel {
  _lastRunPath: string | null;
  getThreadChoice(): 'pool' | 'here' | null;
}
type KernelFn = ((...args: unknown[]) => Promise<Float32Array> | Float32Array) & { kernel: WasmKernel; destroy(): void };

const { WebAssemblyKernel, input } = (await import('gpu.js')) as unknown as {
  WebAssemblyKernel: { chooseThreadPath(pool: number[], here: number[]): 'pool' | 'here' | null };
  input(value: Float32Array, size: number[]): unknown;
};

const N = 8192;
const a = Float32Array.from({ length: N }, (_, i) => Math.sin(i) * 3);
const b = Float32Array.from({ length: N }, (_, i) => Math.cos(i * 0.7));

function light(this: { thread: { x: number } }, x: number[], y: number[], s: number): number {
  return x[this.thread.x]! * s + y[this.thread.x]! / (1 + Math.abs(x[this.thread.x]!));
}

function heavy(this: { thread: { x: number } }, x: number[], y: number[], s: number): number {
  let acc = 0;
  for (let k = 0; k < 3000; k++) acc += Math.sqrt(Math.abs(x[(this.thread.x + k) % 8192]! * y[k % 8192]!)) * s;
  return acc;
}

function noisy(this: { thread: { x: number } }, x: number[]): number {
  return x[this.thread.x]! + Math.random();
}

function kernel(gpu: GPU, fn: Function, settings: object): KernelFn {
  const create = gpu.createKernel as unknown as (f: Function, s: object) => KernelFn;
  return create.call(gpu, fn, { output: [N], asyncMode: true, tactic: 'precision', strictIntegers: true, sharedWorkerPool: true, loopMaxIterations: 1 << 20, ...settings });
}

const same = (x: Float32Array, y: Float32Array) => x.length === y.length && Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));

/**
 * Runs a kernel made by `make` 8 times, checking every result with `check`; where its trial kept the pool
 * (its pool runs were slow: a busy machine), the calling thread is then chosen for it by hand and it runs 2
 * more times, so that both paths run. Returns the paths that ran.
 */
async function throughBothPaths(make: () => KernelFn, call: (k: KernelFn) => unknown, check: (result: unknown, what: string) => void): Promise<Set<string>> {
  const paths = new Set<string>();
  const k = make();
  const runs = async (n: number, what: string) => {
    for (let i = 0; i < n; i++) {
      check(await call(k), `${what} run ${i} (${k.kernel._lastRunPath})`);
      paths.add(k.kernel._lastRunPath === 'threaded' ? 'pool' : 'here');
    }
  };
  await runs(8, 'measured:');
  if (!paths.has('here')) {
    (k.kernel as unknown as { _active: { threadTrial: { choice: string } } })._active.threadTrial.choice = 'here';
    await runs(2, 'on the calling thread by hand:');
  }
  k.destroy();
  return paths;
}

test.serial('the choice: none before three timed runs of each path; the calling thread only when faster and at most 0.25 ms; a tie goes to the pool', (t) => {
  const choose = WebAssemblyKernel.chooseThreadPath;
  t.is(choose([0.5, 0.2], [0.01, 0.01, 0.01]), null);
  t.is(choose([0.5, 0.2, 0.2], [0.01, 0.01]), null);
  t.is(choose([3, 0.2, 0.15], [0.05, 0.04, 0.06]), 'here');
  t.is(choose([3, 0.6, 0.5], [0.3, 0.3, 0.3]), 'pool', 'faster, but longer than 0.25 ms');
  t.is(choose([9, 2, 2.1], [4, 3.9, 4]), 'pool');
  t.is(choose([0.1, 0.1, 0.1], [0.1, 0.2, 0.1]), 'pool');
});

test.serial('the trial ends early, for the pool, when a run on the calling thread takes over 1 ms or when the pool runs after the first both do', (t) => {
  const record = (WebAssemblyKernel as unknown as { _recordTrial(trial: object, path: 'pool' | 'here', ms: number): void })._recordTrial;
  const trial = (pool: number[], here: number[]) => ({ pool: [...pool], here: [...here], choice: null as string | null, next: 'pool' });
  const a = trial([0.5, 0.1, 0.1], []);
  record(a, 'here', 1.5);
  t.is(a.choice, 'pool');
  const b = trial([0.1, 2], []);
  record(b, 'pool', 2);
  t.is(b.choice, 'pool', 'pool runs 2 and 3 over 1 ms');
  const c = trial([5, 0.9], []);
  record(c, 'pool', 2);
  t.is(c.choice, null, 'one of them under 1 ms: the trial goes on');
  const d = trial([5, 0.3, 0.2], [0.05, 0.04]);
  record(d, 'here', 0.06);
  t.is(d.choice, 'here');
  record(d, 'pool', 9);
  t.is(d.choice, 'here', 'a choice made stays');
});

test.serial("'measure': the first runs of a size go to the pool, then to the calling thread, then the choice holds; every result is bit for bit the unthreaded kernel's", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const reference = kernel(gpu, light, { poolSize: 0 });
  const want = (await reference(a, b, 1.5)) as Float32Array;
  const k = kernel(gpu, light, { poolSize: 2, threadChoice: 'measure' });
  const paths: string[] = [];
  let chosenAfter = -1;
  for (let i = 0; i < 12; i++) {
    const got = (await k(a, b, 1.5)) as Float32Array;
    t.true(same(got, want), `run ${i} (${k.kernel._lastRunPath}) differs from the unthreaded result`);
    paths.push(k.kernel._lastRunPath!);
    if (chosenAfter < 0 && k.kernel.getThreadChoice() !== null) chosenAfter = i;
  }
  const choice = k.kernel.getThreadChoice();
  t.log(`paths: ${paths.join(' ')}; chosen after run ${chosenAfter}: ${choice}`);
  const onPool = (p: string) => p === 'threaded';
  // six runs, or fewer where runs took over 1 ms (a busy machine)
  t.true(chosenAfter >= 2 && chosenAfter <= 5, `the trial ended after run ${chosenAfter}`);
  t.deepEqual(paths.slice(0, chosenAfter + 1).map(onPool), [true, true, true, false, false, false].slice(0, chosenAfter + 1), 'pool, pool, pool, here, here, here');
  t.true(choice === 'pool' || choice === 'here', `a choice after the trial: ${choice}`);
  t.true(paths.slice(chosenAfter + 1).every((p) => onPool(p) === (choice === 'pool')), `runs after the trial on the chosen path: ${paths.slice(chosenAfter + 1).join(' ')}`);
});

test.serial("'measure': a kernel whose pool runs take over 1 ms stays on the pool, never run on the calling thread", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const want = (await kernel(gpu, heavy, { poolSize: 0 })(a, b, 0.5)) as Float32Array;
  const k = kernel(gpu, heavy, { poolSize: 2, threadChoice: 'measure' });
  const paths: string[] = [];
  const choices: (string | null)[] = [];
  for (let i = 0; i < 4; i++) {
    t.true(same((await k(a, b, 0.5)) as Float32Array, want), `run ${i}`);
    paths.push(k.kernel._lastRunPath!);
    choices.push(k.kernel.getThreadChoice());
  }
  t.deepEqual(paths, ['threaded', 'threaded', 'threaded', 'threaded']);
  t.deepEqual(choices, [null, null, 'pool', 'pool'], 'chosen after the third run');
});

test.serial("'measure': rows whose width is not a multiple of 4, in 2D and 3D (SIMD quads and scalar cells split differently on the two paths), bit for bit", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  function rows(this: { thread: { x: number; y: number; z: number } }, x: number[]): number {
    return x[(this.thread.z * 700 + this.thread.y) * 13 + this.thread.x]! * 1.25 + this.thread.x * 0.5 - this.thread.y / 3 + this.thread.z;
  }
  const x = Float32Array.from({ length: 13 * 700 * 2 }, (_, i) => Math.sin(i * 0.37) * 5);
  for (const output of [[13, 700], [13, 350, 2]]) {
    const create = gpu.createKernel as unknown as (f: Function, s: object) => KernelFn;
    const settings = { output, asyncMode: true, tactic: 'precision', strictIntegers: true, sharedWorkerPool: true };
    // the rows (and layers) of a 2D (3D) result, one after the other
    const flat = (r: unknown): Float32Array => {
      const out: number[] = [];
      const walk = (v: unknown): void => {
        if (v instanceof Float32Array) out.push(...v);
        else for (const part of v as unknown[]) walk(part);
      };
      walk(r);
      return Float32Array.from(out);
    };
    const want = flat(await create.call(gpu, rows, { ...settings, poolSize: 0 })(x));
    t.is(want.length, output.reduce((p, q) => p * q, 1));
    const paths = await throughBothPaths(
      () => create.call(gpu, rows, { ...settings, poolSize: 2, threadChoice: 'measure' }),
      (k) => k(x),
      (got, what) => t.true(same(flat(got), want), `[${output.join(', ')}] ${what}`),
    );
    t.deepEqual([...paths].sort(), ['here', 'pool'], `[${output.join(', ')}]: both paths ran`);
  }
});

test.serial("'measure' through the project's Kernel with reuseOutput (the result a view of the kernel's memory): every run bit for bit the one-thread device's", async (t) => {
  const { Kernel } = await import('../src/kernels/kernel-runner.js');
  const { Device } = await import('../src/device.js');
  const body = function (this: { thread: { x: number; y: number } }, x: Float32Array, s: number) {
    return x[this.thread.y * 64 + this.thread.x]! * s + this.thread.y;
  };
  const x = Float32Array.from({ length: 64 * 128 }, (_, i) => (i % 23) - 11);
  const one = await Device.create('webasm', { onFallback: 'throw' }, { threads: 1 });
  const two = await Device.create('webasm', { onFallback: 'throw' }, { threads: 2 });
  const ref = new Kernel(one, 'reuse-1', body, { output: [64, 128], reuseOutput: true });
  const k = new Kernel(two, 'reuse-2', body, { output: [64, 128], reuseOutput: true });
  const inner = (k as unknown as { k: { kernel: WasmKernel & { _active: { threadTrial: { choice: string } } } } }).k.kernel;
  const paths = new Set<string>();
  for (let i = 0; i < 10; i++) {
    // after the trial, the calling thread by hand where the pool was kept (a busy machine): both paths run
    if (i === 8 && !paths.has('here')) inner._active.threadTrial.choice = 'here';
    const want = Float32Array.from(await ref.run(x, i));
    const got = Float32Array.from(await k.run(x, i));
    t.true(same(got, want), `run ${i} (${inner._lastRunPath})`);
    paths.add(inner._lastRunPath === 'threaded' ? 'pool' : 'here');
  }
  t.deepEqual([...paths].sort(), ['here', 'pool']);
});

test.serial("'measure': calls made before the last one settled queue on the pool and come out right; a seeded random kernel draws the same on either path", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const want = (await kernel(gpu, light, { poolSize: 0 })(a, b, 2)) as Float32Array;
  const k = kernel(gpu, light, { poolSize: 2, threadChoice: 'measure' });
  for (let round = 0; round < 4; round++) {
    // three calls at once: the first goes where the trial says; while a run is queued or in flight on the
    // pool, the others queue behind it there
    const results = await Promise.all([k(a, b, 2), k(a, b, 2), k(a, b, 2)]);
    for (const r of results) t.true(same(r as Float32Array, want), `round ${round}`);
  }
  t.not(k.kernel.getThreadChoice(), null, 'the trial ended');
  const seeded = { randomSeed: 1234 };
  const wantNoise = (await kernel(gpu, noisy, { poolSize: 0, ...seeded })(a)) as Float32Array;
  const paths = await throughBothPaths(
    () => kernel(gpu, noisy, { poolSize: 2, threadChoice: 'measure', ...seeded }),
    (r) => r(a),
    (got, what) => t.true(same(got as Float32Array, wantNoise), `random: ${what}`),
  );
  t.deepEqual([...paths].sort(), ['here', 'pool'], 'both paths ran');
});

test.serial('a kernel switched for another argument type (an Input where an array was) keeps its pool settings', async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const k = kernel(gpu, light, { poolSize: 2, threadChoice: 'measure' });
  const want = (await k(a, b, 1.5)) as Float32Array;
  const first = k.kernel;
  const got = (await k(input(a, [N]), b, 1.5)) as Float32Array;
  t.not(k.kernel, first, 'switched');
  t.true(same(got, want));
  const switched = k.kernel as unknown as { poolSize: number; threadChoice: string; sharedWorkerPool: boolean };
  t.deepEqual([switched.poolSize, switched.threadChoice, switched.sharedWorkerPool], [2, 'measure', true]);
});

test.serial("'size' (gpu.js's default): every run of 4,096 cells or more on the pool", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const k = kernel(gpu, light, { poolSize: 2 });
  for (let i = 0; i < 4; i++) {
    await k(a, b, 1);
    t.is(k.kernel._lastRunPath, 'threaded');
  }
  t.is(k.kernel.getThreadChoice(), null);
});

test.serial('ALEXNET_WASM_THREAD_CHOICE: measure by default, size for comparison, anything else refused', (t) => {
  t.is(wasmThreadChoice({}), 'measure');
  t.is(wasmThreadChoice({ ALEXNET_WASM_THREAD_CHOICE: 'size' }), 'size');
  t.is(wasmThreadChoice({ ALEXNET_WASM_THREAD_CHOICE: 'measure' }), 'measure');
  const e = t.throws(() => wasmThreadChoice({ ALEXNET_WASM_THREAD_CHOICE: 'fast' }), { instanceOf: EnvSettingError });
  t.is(e?.message, 'ALEXNET_WASM_THREAD_CHOICE=fast: give measure (the default) or size');
});

test('an on/off setting (ALEXNET_POOL_PER_KERNEL) takes 1/on/true/yes and 0/off/false/no; anything else is refused, naming it', (t) => {
  for (const v of ['1', 'on', 'TRUE', 'yes']) t.true(envSwitchOn('ALEXNET_POOL_PER_KERNEL', false, { ALEXNET_POOL_PER_KERNEL: v }), v);
  for (const v of ['0', 'off', 'False', 'no']) t.false(envSwitchOn('ALEXNET_POOL_PER_KERNEL', true, { ALEXNET_POOL_PER_KERNEL: v }), v);
  t.false(envSwitchOn('ALEXNET_POOL_PER_KERNEL', false, {}));
  t.true(envSwitchOn('ALEXNET_POOL_PER_KERNEL', true, { ALEXNET_POOL_PER_KERNEL: '' }));
  t.throws(() => envSwitchOn('ALEXNET_POOL_PER_KERNEL', false, { ALEXNET_POOL_PER_KERNEL: 'maybe' }), { instanceOf: EnvSettingError, message: 'ALEXNET_POOL_PER_KERNEL=maybe: give 1 (on) or 0 (off)' });
});
