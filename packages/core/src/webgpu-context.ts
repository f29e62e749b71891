/**
 * gpu.js's one GPUDevice (its webgpu backend shares one device among all kernels of a process), for what
 * the project asks of it directly: waiting until the GPU has done its work (the kernel profile's GPU time)
 * and counting the bind groups and buffers a piece of work makes (the benchmark's per-step figures).
 */
import gpujs from 'gpu.js';

type Make = (...args: unknown[]) => unknown;

/** The part of the GPUDevice used here. */
interface DeviceLike {
  queue: { onSubmittedWorkDone(): Promise<void> };
}

interface WebGPUContextLike {
  acquire(): Promise<{ device: DeviceLike }>;
}

/** gpu.js's device; looked up when first needed, so that a gpu.js without it fails this use, not the Device. */
async function gpuDevice(): Promise<DeviceLike> {
  const context = (gpujs as unknown as { WebGPUContext?: WebGPUContextLike }).WebGPUContext;
  if (!context) throw new Error("this gpu.js exports no WebGPUContext (the webgpu backend's shared device); the project pins gpu.js 2.24.1");
  return (await context.acquire()).device;
}

/** Resolves once the GPU has finished everything submitted to gpu.js's device so far. */
export async function drainQueue(): Promise<void> {
  await (await gpuDevice()).queue.onSubmittedWorkDone();
}

export interface DeviceObjectCounts<T> {
  readonly result: T;
  /** createBindGroup calls while `run` ran. */
  readonly bindGroups: number;
  /** createBuffer calls (results, arguments, staging buffers of read-backs). */
  readonly buffers: number;
}

/**
 * Runs `run`, counting the bind groups and buffers made on gpu.js's device meanwhile (by wrapping the
 * device's two methods; anything else on the device in that time is counted too).
 */
export async function countDeviceObjects<T>(run: () => Promise<T>): Promise<DeviceObjectCounts<T>> {
  const proto = Object.getPrototypeOf(await gpuDevice()) as Record<'createBindGroup' | 'createBuffer', Make>;
  const [bindGroup, buffer] = [proto.createBindGroup, proto.createBuffer];
  let bindGroups = 0;
  let buffers = 0;
  proto.createBindGroup = function (this: unknown, ...a: unknown[]) {
    bindGroups++;
    return bindGroup.apply(this, a);
  };
  proto.createBuffer = function (this: unknown, ...a: unknown[]) {
    buffers++;
    return buffer.apply(this, a);
  };
  try {
    const result = await run();
    return { result, bindGroups, buffers };
  } finally {
    proto.createBindGroup = bindGroup;
    proto.createBuffer = buffer;
  }
}
