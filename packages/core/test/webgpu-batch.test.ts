/**
 * Kernel dispatches submitted in batches (the gpu.js patch, item 12: command-batch.js): one command buffer
 * carries up to WebGPUContext.batchSize dispatches. What could go wrong and is checked here: a kernel run
 * again while its first dispatch waits (its params and argument buffers are rewritten), a result freed while
 * a dispatch that writes it waits, work left unsubmitted when the host goes idle or drains the queue.
 * webgpu only (ALEXNET_TEST_BACKEND=webgpu; the software adapter of scripts/lavapipe.sh in `npm test`).
 */
import test, { type ExecutionContext } from 'ava';
import gpujs from 'gpu.js';
import { countDeviceObjects, drainQueue, webgpuBatchFromEnv, EnvSettingError } from '../src/webgpu-context.js';
import { testBackend, testDevice } from './helpers.js';

interface Batch { dispatches: number }
interface GpuDevice {
  pushErrorScope(kind: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
}
interface Context { device: GpuDevice; batch: Batch | null }
interface WebGPUContextApi { acquire(): Promise<Context>; flush(c: Context): void; batchSize: number }
const WebGPUContext = (gpujs as unknown as { WebGPUContext: WebGPUContextApi }).WebGPUContext;

interface Handle { toArray(): Promise<Float32Array>; delete(): void; buffer: { destroy(): void } }
type Scaled = (a: Float32Array | Handle, s: number) => Promise<Handle>;

const webgpu = testBackend === 'webgpu' ? test.serial : test.skip;

/** A pipeline kernel a[x] * s over n values, on the test device's gpu.js instance. */
async function scaleKernel(n: number): Promise<Scaled> {
  const dev = await testDevice();
  const create = dev.gpu.createKernel as unknown as (f: (this: { thread: { x: number } }, a: Float32Array, s: number) => number, o: object) => Scaled;
  return create.call(dev.gpu, function (a: Float32Array, s: number) {
    return a[this.thread.x]! * s;
  }, { output: [n], pipeline: true, immutable: true });
}

/** Runs `body` with `batchSize` dispatches a submit, restoring the setting after. */
async function withBatchSize<T>(t: ExecutionContext, size: number, body: () => Promise<T>): Promise<T> {
  const before = WebGPUContext.batchSize;
  WebGPUContext.batchSize = size;
  try {
    return await body();
  } finally {
    WebGPUContext.batchSize = before;
    t.is(WebGPUContext.batchSize, before);
  }
}

webgpu('a kernel run twice while its first dispatch waits in the batch computes each run with its own arguments', async (t) => {
  const k = await scaleKernel(8);
  const a = Float32Array.from({ length: 8 }, (_, i) => i + 1);
  const b = Float32Array.from({ length: 8 }, (_, i) => -(i + 1));
  await k(a, 1); // built
  await drainQueue();
  const context = await WebGPUContext.acquire();
  await withBatchSize(t, 16, async () => {
    const r1 = await k(a, 2);
    t.is(context.batch?.dispatches, 1, 'the first run waits in the batch');
    const r2 = await k(b, 3); // rewrites the scalar and the array argument: the first dispatch goes first
    const r3 = await k(a, 5);
    t.deepEqual(Array.from(await r1.toArray()), Array.from(a, (v) => v * 2));
    t.deepEqual(Array.from(await r2.toArray()), Array.from(b, (v) => v * 3));
    t.deepEqual(Array.from(await r3.toArray()), Array.from(a, (v) => v * 5));
    [r1, r2, r3].forEach((r) => r.delete());
  });
});

webgpu('twenty kernels chained in one batch of 16: two submits, the same values as one submit a call', async (t) => {
  const kernels: Scaled[] = [];
  for (let i = 0; i < 20; i++) kernels.push(await scaleKernel(16));
  const x = Float32Array.from({ length: 16 }, (_, i) => (i % 5) - 2);
  const chain = async () => {
    let h = await kernels[0]!(x, 1.5);
    const made = [h];
    for (let i = 1; i < 20; i++) made.push(h = await kernels[i]!(h, i % 2 === 0 ? 1.25 : 0.75));
    const out = await h.toArray();
    made.forEach((m) => m.delete());
    return Array.from(out);
  };
  await chain(); // built
  await drainQueue();
  const batched = await withBatchSize(t, 16, () => countDeviceObjects(chain));
  const single = await withBatchSize(t, 1, () => countDeviceObjects(chain));
  t.is(batched.submits, 2, '16 dispatches, then the last 4 with the read-back copy');
  t.is(single.submits, 21, 'a submit a dispatch, and one for the read-back');
  t.deepEqual(batched.result, single.result);
  let want = Array.from(x, (v) => v * 1.5);
  for (let i = 1; i < 20; i++) want = want.map((v) => Math.fround(v * (i % 2 === 0 ? 1.25 : 0.75)));
  t.deepEqual(batched.result, want);
});

webgpu('a result freed while a waiting dispatch reads it is destroyed after the submit, not before', async (t) => {
  const k = await scaleKernel(32);
  const consumer = await scaleKernel(32);
  const x = new Float32Array(32).fill(1);
  const warm = await k(x, 1);
  (await consumer(warm, 1)).delete();
  warm.delete();
  const context = await WebGPUContext.acquire();
  const device = context.device;
  await withBatchSize(t, 16, async () => {
    device.pushErrorScope('validation');
    const r = await k(x, 2);
    WebGPUContext.flush(context); // k's dispatch is on the queue; the consumer's waits in the next batch
    const c = await consumer(r, 10);
    r.delete(); // the handle goes; k holds the buffer until its next run
    const r2 = await k(x, 3); // k has nothing waiting, so it runs at once and lets its last buffer go
    t.truthy(context.batch, 'the consumer still waits');
    WebGPUContext.flush(context);
    t.is(await device.popErrorScope(), null, 'no destroyed buffer in the submit');
    t.deepEqual(Array.from(await c.toArray()), new Array(32).fill(20));
    t.deepEqual(Array.from(await r2.toArray()), new Array(32).fill(3));

    // the last handle deleted while the consumer reading its buffer waits (the trainer's Device.release())
    device.pushErrorScope('validation');
    const r3 = await k(x, 2);
    const r4 = await k(x, 4); // submits r3's dispatch; k lets r3's buffer go, the handle holds it
    const c2 = await consumer(r3, 10);
    r3.delete(); // the last reference: the buffer is released under the waiting consumer
    t.truthy(context.batch, 'the consumer still waits');
    WebGPUContext.flush(context);
    t.is(await device.popErrorScope(), null, 'no destroyed buffer in the submit');
    t.deepEqual(Array.from(await c2.toArray()), new Array(32).fill(20));
    [c2, r4].forEach((h) => h.delete());

    // the check itself: a buffer destroyed under a waiting dispatch is an error the scope sees
    device.pushErrorScope('validation');
    const s = await k(x, 3);
    s.buffer.destroy();
    WebGPUContext.flush(context);
    t.truthy(await device.popErrorScope(), 'destroying under a waiting dispatch is refused at submit');
    [c, r2].forEach((h) => h.delete());
  });
});

webgpu('a kernel destroyed while its dispatch waits submits it first', async (t) => {
  const k = (await scaleKernel(16)) as Scaled & { destroy(): void };
  const x = new Float32Array(16).fill(3);
  (await k(x, 1)).delete();
  const context = await WebGPUContext.acquire();
  const device = context.device;
  await withBatchSize(t, 16, async () => {
    device.pushErrorScope('validation');
    const r = await k(x, 2);
    t.truthy(context.batch, 'the dispatch waits');
    k.destroy(); // its params and argument buffers go
    WebGPUContext.flush(context);
    t.is(await device.popErrorScope(), null, 'the dispatch went before its buffers');
    t.deepEqual(Array.from(await r.toArray()), new Array(16).fill(6));
    r.delete();
  });
});

webgpu('recorded work is submitted when the host yields to the event loop, and by drainQueue', async (t) => {
  const k = await scaleKernel(4);
  const x = new Float32Array(4).fill(2);
  (await k(x, 1)).delete();
  await drainQueue();
  const context = await WebGPUContext.acquire();
  await withBatchSize(t, 16, async () => {
    const r = await k(x, 1);
    t.truthy(context.batch);
    await new Promise((resolve) => setImmediate(resolve));
    t.is(context.batch, null, 'submitted at the next turn of the event loop');
    const s = await k(x, 2);
    t.truthy(context.batch);
    // what is still unsubmitted when drainQueue starts to wait (the event loop would submit it later)
    const queue = (context.device as unknown as { queue: { onSubmittedWorkDone(): Promise<void> } }).queue;
    const done = queue.onSubmittedWorkDone;
    let waitingOn: Batch | null | undefined;
    queue.onSubmittedWorkDone = function (this: unknown) {
      waitingOn = context.batch;
      return done.call(this);
    };
    try {
      await drainQueue();
    } finally {
      queue.onSubmittedWorkDone = done;
    }
    t.is(waitingOn, null, 'drainQueue submits before it waits');
    t.deepEqual(Array.from(await s.toArray()), [4, 4, 4, 4]);
    [r, s].forEach((h) => h.delete());
  });
});

test('ALEXNET_WEBGPU_BATCH: 16 by default, a whole number from 1 to 4096, else an error naming the variable', (t) => {
  t.is(webgpuBatchFromEnv({}), 16);
  t.is(webgpuBatchFromEnv({ ALEXNET_WEBGPU_BATCH: '1' }), 1);
  t.is(webgpuBatchFromEnv({ ALEXNET_WEBGPU_BATCH: '64' }), 64);
  for (const bad of ['0', '-3', '2.5', 'many', '5000', '0x10', '1e1', ' 8 ']) {
    const e = t.throws(() => webgpuBatchFromEnv({ ALEXNET_WEBGPU_BATCH: bad }), { instanceOf: EnvSettingError });
    t.regex(e!.message, /^ALEXNET_WEBGPU_BATCH=/);
  }
  t.throws(() => { WebGPUContext.batchSize = 0; }, { message: /at least 1/ });
});
