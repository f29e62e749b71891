/**
 * gpu.js's webasm `threadChoice: 'measure'` (our patch, patches/README.md item 14): a kernel of 4,096 cells or
 * more runs its first calls of a size alternately on the worker pool and on the calling thread, timed, and
 * keeps the faster (the calling thread only for runs of at most 0.25 ms). Both paths compute every cell the
 * same way: the results are bit for bit those of a kernel without threads, whichever path ran.
 */
import test from 'ava';
import { GPU } from 'gpu.js';
import { EnvSettingError } from '../src/env-setting-error.js';
import { wasmThreadChoice } from '../src/kernels/kernel-runner.js';

interface WasmKernel {
  _lastRunPath: string | null;
  getThreadChoice(): 'pool' | 'here' | null;
}
type KernelFn = ((...args: unknown[]) => Promise<Float32Array> | Float32Array) & { kernel: WasmKernel; destroy(): void };

const { WebAssemblyKernel } = (await import('gpu.js')) as unknown as { WebAssemblyKernel: { chooseThreadPath(pool: number[], here: number[]): 'pool' | 'here' | null } };

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

test('the choice: none before three timed runs of each path; the calling thread only when faster and at most 0.25 ms; a tie goes to the pool', (t) => {
  const choose = WebAssemblyKernel.chooseThreadPath;
  t.is(choose([0.5, 0.2], [0.01, 0.01, 0.01]), null);
  t.is(choose([0.5, 0.2, 0.2], [0.01, 0.01]), null);
  t.is(choose([3, 0.2, 0.15], [0.05, 0.04, 0.06]), 'here');
  t.is(choose([3, 0.6, 0.5], [0.3, 0.3, 0.3]), 'pool', 'faster, but longer than 0.25 ms');
  t.is(choose([9, 2, 2.1], [4, 3.9, 4]), 'pool');
  t.is(choose([0.1, 0.1, 0.1], [0.1, 0.2, 0.1]), 'pool');
});

test("'measure': the first runs of a size alternate between the pool and the calling thread, then the choice holds; every result is bit for bit the unthreaded kernel's", async (t) => {
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
  // six runs, or fewer where a run on the calling thread took over 1 ms (a busy machine)
  t.true(chosenAfter >= 1 && chosenAfter <= 5, `the trial ended after run ${chosenAfter}`);
  t.deepEqual(paths.slice(0, chosenAfter + 1).map(onPool), [true, false, true, false, true, false].slice(0, chosenAfter + 1), 'pool, here, pool, here, ...');
  t.true(choice === 'pool' || choice === 'here', `a choice after the trial: ${choice}`);
  t.true(paths.slice(chosenAfter + 1).every((p) => onPool(p) === (choice === 'pool')), `runs after the trial on the chosen path: ${paths.slice(chosenAfter + 1).join(' ')}`);
});

test("'measure': a run on the calling thread longer than 1 ms ends the trial at once, for the pool", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const want = (await kernel(gpu, heavy, { poolSize: 0 })(a, b, 0.5)) as Float32Array;
  const k = kernel(gpu, heavy, { poolSize: 2, threadChoice: 'measure' });
  const paths: string[] = [];
  for (let i = 0; i < 4; i++) {
    t.true(same((await k(a, b, 0.5)) as Float32Array, want), `run ${i}`);
    paths.push(k.kernel._lastRunPath!);
  }
  t.is(paths[0], 'threaded');
  t.not(paths[1], 'threaded', 'the second run is the trial on the calling thread');
  t.is(k.kernel.getThreadChoice(), 'pool');
  t.deepEqual(paths.slice(2), ['threaded', 'threaded']);
});

test("'measure': calls made before the last one settled queue on the pool and come out right; a seeded random kernel draws the same on either path", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const want = (await kernel(gpu, light, { poolSize: 0 })(a, b, 2)) as Float32Array;
  const k = kernel(gpu, light, { poolSize: 2, threadChoice: 'measure' });
  for (let round = 0; round < 4; round++) {
    // three calls at once: the first takes the trial's turn, the others wait behind a run on the pool
    const results = await Promise.all([k(a, b, 2), k(a, b, 2), k(a, b, 2)]);
    for (const r of results) t.true(same(r as Float32Array, want), `round ${round}`);
  }
  const seeded = { randomSeed: 1234 };
  const wantNoise = (await kernel(gpu, noisy, { poolSize: 0, ...seeded })(a)) as Float32Array;
  const r = kernel(gpu, noisy, { poolSize: 2, threadChoice: 'measure', ...seeded });
  const paths = new Set<string>();
  for (let i = 0; i < 8; i++) {
    t.true(same((await r(a)) as Float32Array, wantNoise), `random run ${i} (${r.kernel._lastRunPath})`);
    paths.add(r.kernel._lastRunPath === 'threaded' ? 'pool' : 'here');
  }
  t.deepEqual([...paths].sort(), ['here', 'pool'], 'both paths ran');
});

test("'size' (gpu.js's default): every run of 4,096 cells or more on the pool", async (t) => {
  const gpu = new GPU({ mode: 'webasm' });
  t.teardown(() => gpu.destroy());
  const k = kernel(gpu, light, { poolSize: 2 });
  for (let i = 0; i < 4; i++) {
    await k(a, b, 1);
    t.is(k.kernel._lastRunPath, 'threaded');
  }
  t.is(k.kernel.getThreadChoice(), null);
});

test('ALEXNET_WASM_THREAD_CHOICE: measure by default, size for comparison, anything else refused', (t) => {
  t.is(wasmThreadChoice({}), 'measure');
  t.is(wasmThreadChoice({ ALEXNET_WASM_THREAD_CHOICE: 'size' }), 'size');
  t.is(wasmThreadChoice({ ALEXNET_WASM_THREAD_CHOICE: 'measure' }), 'measure');
  const e = t.throws(() => wasmThreadChoice({ ALEXNET_WASM_THREAD_CHOICE: 'fast' }), { instanceOf: EnvSettingError });
  t.is(e?.message, 'ALEXNET_WASM_THREAD_CHOICE=fast: give measure (the default) or size');
});
