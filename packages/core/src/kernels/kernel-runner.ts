/**
 * One place where gpu.js kernels are created and run, so that every kernel:
 * - runs under the async contract (webasm splits big kernels over worker threads; webgpu is async anyway),
 * - has its executed mode read back and checked against the device's mode after its first run.
 */
import os from 'node:os';
import type { Device, DeviceTensor, ResidentTensor } from '../device.js';
import { flattenResult, installFlatOutput } from './flat-output.js';
import { reuseOutputOf } from './reused-output.js';
import { profiled } from './kernel-profile.js';
import { EnvSettingError, envSwitchOn } from '../env-setting-error.js';

/** What a kernel body sees as `this`. */
export interface KernelThis {
  readonly thread: { readonly x: number; readonly y: number; readonly z: number };
  readonly constants: Readonly<Record<string, number>>;
}

/** A kernel argument: a flat Float32Array, a device-resident result, or a number. */
export type KernelArg = DeviceTensor | number;

export type KernelOutput = number[] | [number, number] | [number, number, number];

export interface KernelOptions {
  readonly output: KernelOutput;
  readonly constants?: Record<string, number>;
  /**
   * 'Array(4)' lets one thread produce four results: how the GEMM amortises its gathers on SIMD lanes
   * (webasm) and its loads (webgpu, where the packed result passes on as a plain array: the gpu.js patch).
   */
  readonly returnType?: 'Number' | 'Array(4)';
  /**
   * webgpu, with returnType 'Array(4)' and a 2D or 3D output [X, Y(, Z)]: the four results of thread (x, y, z)
   * are rows 4y .. 4y + 3 of layer z of a plain [Z][4Y][X] array (gpu.js's componentsAsRows, patch item 13)
   * instead of four neighbours in a row. Other modes refuse it.
   */
  readonly componentsAsRows?: boolean;
  /** webgpu, a 2D or 3D output: the workgroup's [x, y] threads (gpu.js's workgroupShape, patch item 13; default 8 x 8). */
  readonly workgroupShape?: readonly [number, number];
  /**
   * The caller is done with each result before it calls this kernel again (reused-output.ts): on
   * webasm the result then comes back as a view of the kernel's own memory instead of a new array per
   * call; on webgpu the kernel writes every call into one device buffer (gpu.js's `immutable: false`)
   * instead of allocating a fresh one (7.3 GiB of fresh buffers a step at the paper preset, batch 128).
   * GPU work runs in submission order, so on webgpu "done" means: every kernel that reads the result
   * was called (or its read-back awaited) before this kernel's next call.
   */
  readonly reuseOutput?: boolean;
}

/**
 * For the backward kernels (ReLU, LRN, max-pool, flatten, col2im): a layer's input gradient is read
 * by the layer below it (or sent across, at a crossing, and serialised onto the stream) before that backward kernel
 * runs again: in the next step, or for col2im's next chunk of images after this chunk is placed.
 */
export const BACKWARD_REUSES_OUTPUT = true;

/**
 * For the forward kernels of layers without parameters (LRN, max-pool, flatten): a step reads their
 * result in the next layer's forward and in the backward of the same step (or copies it, at a
 * crossing, and a tap's read-back is copied too), all before the layer's next forward call in the
 * next step; the tower runs one forward before each backward.
 */
export const FORWARD_REUSES_OUTPUT = true;

type GpuKernel = ((...args: KernelArg[]) => Promise<unknown> | unknown) & { destroy?: () => void };

/** A kernel's array is larger than the device binds in one buffer (Device.maxKernelFloats). */
export class ArrayTooLargeError extends Error {
  constructor(kernel: string, floats: number, limit: number) {
    super(`kernel ${kernel} would address ${floats} floats (${(floats * 4 / 2 ** 20).toFixed(0)} MiB), more than this GPU binds in one buffer (${limit} floats); use a smaller batch`);
    this.name = 'ArrayTooLargeError';
  }
}

function checkWebGPUBindingSize(device: Device, name: string, outLength: number, args: KernelArg[]): void {
  let biggest = outLength;
  for (const a of args) if (a instanceof Float32Array) biggest = Math.max(biggest, a.length);
  if (biggest > device.maxKernelFloats) throw new ArrayTooLargeError(name, biggest, device.maxKernelFloats);
}

export class Kernel {
  private checked = false;
  private readonly k: GpuKernel;
  /** Number of floats the kernel produces: output cells x components. */
  readonly length: number;
  private readonly returnsVector: boolean;
  /** Results reuse one host buffer (KernelOptions.reuseOutput on webasm and cpu; webgpu reuses its device buffer instead). */
  private readonly reuseOutput: boolean;
  /** Every call's result lands in the same buffer, host (webasm) or device (webgpu): KernelOptions.reuseOutput. */
  private readonly reusesBuffer: boolean;

  /** Freed with its run (Device.reset): a call after that is a bug, said rather than silently rebuilt. */
  private destroyed = false;

  // eslint-disable-next-line @typescript-eslint/ban-types
  constructor(private readonly device: Device, readonly name: string, fn: Function, opts: KernelOptions) {
    installFlatOutput();
    device.adopt(this);
    if (opts.componentsAsRows && (device.mode !== 'webgpu' || opts.returnType !== 'Array(4)' || opts.output.length < 2)) {
      throw new Error(`kernel ${name}: componentsAsRows is for webgpu kernels returning Array(4) over a 2D or 3D output`);
    }
    this.returnsVector = opts.returnType === 'Array(4)';
    this.reusesBuffer = opts.reuseOutput === true;
    this.reuseOutput = this.reusesBuffer && !device.resident;
    this.length = opts.output.reduce((a, b) => a * b, 1) * (this.returnsVector ? 4 : 1);
    const create = device.gpu.createKernel as unknown as (f: Function, s: object) => GpuKernel;
    this.k = create.call(device.gpu, fn, {
      output: opts.output,
      constants: opts.constants ?? {},
      returnType: opts.returnType,
      ...(opts.componentsAsRows ? { componentsAsRows: true } : {}),
      ...(opts.workgroupShape && device.mode === 'webgpu' ? { workgroupShape: [...opts.workgroupShape] } : {}),
      asyncMode: true,
      tactic: 'precision',
      dynamicOutput: false,
      dynamicArguments: false,
      // gpu.js caps loops with a run-time bound at 1000 iterations by default
      loopMaxIterations: 1 << 30,
      // on webgpu results stay on the device, each call in a buffer of its own unless the caller is
      // done with a result before the next call (reuseOutput)
      pipeline: device.resident,
      immutable: device.resident && opts.reuseOutput !== true,
      // integer variables, constants and arguments stay i32, in WGSL on webgpu and in WebAssembly on
      // webasm (our gpu.js patch makes Math.floor(a / b) of integers an exact division in both): indices
      // are exact past 2^24, and on webasm no index converts from float before each load (2-4x faster GEMMs)
      strictIntegers: device.mode === 'webgpu' || device.mode === 'webasm',
      // webasm: every kernel's threaded runs go to one pool of worker threads (our gpu.js patch), not
      // a pool per kernel: a tower has some eighty kernels, a worker process had hundreds of threads
      sharedWorkerPool: !envSwitchOn('ALEXNET_POOL_PER_KERNEL', false),
      // webasm: Device.threads 1 runs every kernel on the calling thread (the patch's poolSize 0), N a pool of N,
      // none a thread per core this process may run on (gpu.js alone would count every core of the machine),
      // the calling thread where that is one (a worker thread would only add the hand-over)
      ...(device.mode !== 'webasm' ? {} : { poolSize: poolSizeOf(device.threads), threadChoice: wasmThreadChoice() }),
    });
  }

  /**
   * Frees what gpu.js holds for the kernel (its compiled module and memory, its instances on the worker threads,
   * its GPU buffers and pipelines) and drops it from the GPU object's list, which would otherwise keep it for the
   * life of the process. Device.reset calls it for every kernel of a run that is replaced.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.k.destroy?.();
  }

  /** Calls gpu.js, timing the call when profiling (kernel-profile.ts) and checking the mode that ran after the first. */
  private async call(args: KernelArg[]): Promise<unknown> {
    if (this.destroyed) throw new Error(`kernel ${this.name} was freed with the run it belonged to (Device.reset) and called again`);
    const r = await profiled(this.name, 'kernel', this.length * 4, this.reusesBuffer, this.device.queueDrain, async () => this.k(...args));
    if (!this.checked) {
      this.device.checkKernel(this.name, this.k);
      this.checked = true;
    }
    if (this.reuseOutput) reuseOutputOf(this.k);
    return r;
  }

  /**
   * Runs the kernel. On a resident device (webgpu) the result stays there;
   * otherwise it is the packed [z][y][x][component] Float32Array.
   */
  async exec(...args: KernelArg[]): Promise<DeviceTensor> {
    if (!this.device.resident) return this.run(...args);
    checkWebGPUBindingSize(this.device, this.name, this.length, args);
    const r = (await this.call(args)) as ResidentTensor;
    this.device.track(r);
    return r;
  }

  /** Runs the kernel and returns its result on the host (read back on a resident device). */
  async run(...args: KernelArg[]): Promise<Float32Array> {
    if (this.device.resident) return this.device.toHost(await this.exec(...args), this.length);
    return flattenResult(await this.call(args), this.length);
  }
}

/**
 * webasm with worker threads: how a kernel of 4,096 cells or more picks the pool or the calling thread (our gpu.js
 * patch's threadChoice, patches/README.md item 14). `measure` (the default): its first runs of a size go both
 * ways, timed, and runs of at most 0.25 ms that are faster on the calling thread stay there (handing a run to
 * the pool costs more than a small elementwise kernel computes: bench/kernel-launch.ts); anything longer keeps
 * the pool (a kernel whose pool runs take over 1 ms, such as cifar's GEMMs, never runs on the calling thread).
 * `ALEXNET_WASM_THREAD_CHOICE=size`: every such kernel on the pool, for comparison.
 */
export function wasmThreadChoice(env: NodeJS.ProcessEnv = process.env): 'size' | 'measure' {
  const v = env.ALEXNET_WASM_THREAD_CHOICE;
  if (v === undefined || v === '' || v === 'measure') return 'measure';
  if (v === 'size') return 'size';
  throw new EnvSettingError(`ALEXNET_WASM_THREAD_CHOICE=${v}: give measure (the default) or size`);
}

/** gpu.js's webasm pool size for Device.threads: 1, or none given where this process may run on one CPU, is 0 (the calling thread). */
export function poolSizeOf(threads: number | null, cores = os.availableParallelism()): number {
  const n = threads ?? cores;
  return n === 1 ? 0 : n;
}
