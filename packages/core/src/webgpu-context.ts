/**
 * gpu.js's one GPUDevice (its webgpu backend shares one device among all kernels of a process), for what
 * the project asks of it directly: waiting until the GPU has done its work (the kernel profile's GPU time),
 * how many kernel dispatches go to the GPU in one submit, and counting the bind groups, buffers and
 * submits a piece of work makes (the benchmark's per-step figures).
 */
import gpujs from 'gpu.js';
import { EnvSettingError } from './env-setting-error.js';

export { EnvSettingError };

type Make = (...args: unknown[]) => unknown;

/** The part of the GPUDevice used here. */
interface DeviceLike {
  queue: { onSubmittedWorkDone(): Promise<void> };
  lost: Promise<{ reason?: string; message?: string }>;
  addEventListener(type: 'uncapturederror', listener: (e: { error?: { message?: string; constructor?: { name?: string } } }) => void): void;
}

/** What ended a WebGPU device (GPUDeviceLostInfo): `destroyed` when something destroyed it, else `unknown`. */
export interface DeviceLoss {
  readonly reason: string;
  readonly message: string;
}

/** The object gpu.js's WebGPUContext.acquire() resolves to. */
interface ContextLike {
  device: DeviceLike;
}

interface WebGPUContextLike {
  acquire(): Promise<ContextLike>;
  /** Submits the kernel dispatches gpu.js recorded and has not submitted yet (patch item 12). */
  flush(context: ContextLike): void;
  batchSize: number;
}

function webgpuContext(): WebGPUContextLike {
  const context = (gpujs as unknown as { WebGPUContext?: WebGPUContextLike }).WebGPUContext;
  if (!context) throw new Error("this gpu.js exports no WebGPUContext (the webgpu backend's shared device); the project pins gpu.js 2.24.1");
  return context;
}

/** gpu.js's device context; looked up when first needed, so that a gpu.js without it fails this use, not the Device. */
async function gpuContext(): Promise<ContextLike> {
  return webgpuContext().acquire();
}

/**
 * Resolves when gpu.js's device is lost (a driver reset, the GPU falling off the bus, a device destroyed):
 * its kernels then fail, and whatever holds their results or parameters on it has lost them.
 */
export async function gpuDeviceLost(): Promise<DeviceLoss> {
  const info = await (await gpuContext()).device.lost;
  return { reason: String(info?.reason ?? 'unknown'), message: String(info?.message ?? '') };
}

/** Errors the device reported outside any error scope since they were last taken (watchGpuErrors). */
const gpuErrors: string[] = [];
/** The devices watched (gpu.js opens a new one after a loss) and the context last watched, to flush. */
const watched = new WeakSet<object>();
let watchedContext: ContextLike | null = null;

/**
 * Starts collecting the errors gpu.js's device reports on its own (WebGPU's uncaptured errors: out of memory,
 * a validation error), which gpu.js only prints: the work they spoiled gives wrong results, not an exception.
 * takeGpuErrors() hands them on. Once per device (a device opened after a loss is watched when this is next
 * called).
 */
export async function watchGpuErrors(): Promise<void> {
  const c = await gpuContext();
  watchedContext = c;
  if (watched.has(c.device)) return;
  watched.add(c.device);
  c.device.addEventListener('uncapturederror', (e) => {
    const kind = e.error?.constructor?.name;
    // Dawn's messages run over several lines ("... - While calling [Device].CreateBuffer(...)")
    const message = (e.error?.message ?? 'an unknown error').trim().replace(/\s*\n\s*/g, ' ');
    gpuErrors.push(`${kind && kind !== 'Object' ? `${kind}: ` : ''}${message}`);
  });
}

/**
 * The errors collected by watchGpuErrors, oldest first (and forgets them). The kernel dispatches gpu.js holds
 * in its open batch are submitted first, so that the errors their validation raises are among them.
 */
export function takeGpuErrors(): string[] {
  if (watchedContext) webgpuContext().flush(watchedContext);
  return gpuErrors.splice(0);
}

/** Resolves once the GPU has finished everything the kernels asked of gpu.js's device so far. */
export async function drainQueue(): Promise<void> {
  const context = await gpuContext();
  // dispatches recorded into gpu.js's open command batch are not on the queue yet
  webgpuContext().flush(context);
  await context.device.queue.onSubmittedWorkDone();
}


/** Default kernel dispatches a submit carries on webgpu; `ALEXNET_WEBGPU_BATCH` overrides (1: one submit a kernel call). */
export const defaultWebgpuBatch = 16;

/**
 * The number of kernel dispatches gpu.js records into one command buffer before submitting it
 * (`ALEXNET_WEBGPU_BATCH`, else 16). A wrong value is an error that names the variable.
 */
export function webgpuBatchFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ALEXNET_WEBGPU_BATCH;
  if (raw === undefined || raw === '') return defaultWebgpuBatch;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 4096) {
    throw new EnvSettingError(`ALEXNET_WEBGPU_BATCH=${raw}: give the kernel dispatches a submit carries, a whole number from 1 to 4096`);
  }
  return n;
}

/** Sets how many kernel dispatches gpu.js's webgpu backend submits at once (see webgpuBatchFromEnv). */
export function setWebgpuBatch(n: number): void {
  webgpuContext().batchSize = n;
}

export interface DeviceObjectCounts<T> {
  readonly result: T;
  /** createBindGroup calls while `run` ran. */
  readonly bindGroups: number;
  /** createBuffer calls (results, arguments, staging buffers of read-backs). */
  readonly buffers: number;
  /** queue.submit calls (command buffers handed to the GPU). */
  readonly submits: number;
}

/**
 * Runs `run`, counting the bind groups, buffers and submits made on gpu.js's device meanwhile (by wrapping
 * the device's and the queue's methods; anything else on the device in that time is counted too).
 */
export async function countDeviceObjects<T>(run: () => Promise<T>): Promise<DeviceObjectCounts<T>> {
  const device = (await gpuContext()).device;
  const proto = Object.getPrototypeOf(device) as Record<'createBindGroup' | 'createBuffer', Make>;
  const queueProto = Object.getPrototypeOf(device.queue) as Record<'submit', Make>;
  const [bindGroup, buffer, submit] = [proto.createBindGroup, proto.createBuffer, queueProto.submit];
  let bindGroups = 0;
  let buffers = 0;
  let submits = 0;
  proto.createBindGroup = function (this: unknown, ...a: unknown[]) {
    bindGroups++;
    return bindGroup.apply(this, a);
  };
  proto.createBuffer = function (this: unknown, ...a: unknown[]) {
    buffers++;
    return buffer.apply(this, a);
  };
  queueProto.submit = function (this: unknown, ...a: unknown[]) {
    submits++;
    return submit.apply(this, a);
  };
  try {
    const result = await run();
    return { result, bindGroups, buffers, submits };
  } finally {
    proto.createBindGroup = bindGroup;
    proto.createBuffer = buffer;
    queueProto.submit = submit;
  }
}
