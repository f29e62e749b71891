/**
 * A device owns one gpu.js GPU in one mode and checks that every kernel runs
 * in the mode that was asked for: gpu.js silently degrades to `cpu` when a
 * kernel uses something a backend lacks, and this project never runs slower
 * than asked without saying so.
 */
import { GPU } from 'gpu.js';
import { describeAdapter, routeTo, type AdapterInfo, type ListedAdapter } from './adapters.js';
import { installAdapter, installedAdapter, listAdapters, openAdapter, type OpenedAdapter } from './webgpu-adapter.js';
import { profiled, type QueueDrain } from './kernels/kernel-profile.js';
import { whyNoVulkan } from './vulkan-presence.js';
import { drainQueue, gpuDeviceLost, setWebgpuBatch, takeGpuErrors, watchGpuErrors, webgpuBatchFromEnv, type DeviceLoss } from './webgpu-context.js';

export type BackendMode = 'webgpu' | 'webasm' | 'cpu';
export type RequestedBackend = BackendMode | 'auto';
export const backendChoices: readonly RequestedBackend[] = ['auto', 'webgpu', 'webasm', 'cpu'];

export class BackendFallbackError extends Error {
  constructor(readonly kernelName: string, readonly asked: BackendMode, readonly ran: string, readonly reason: string | null) {
    super(`kernel ${kernelName} asked for gpu.js mode "${asked}" but ran on "${ran}"${reason ? `: ${reason}` : ''}`);
    this.name = 'BackendFallbackError';
  }
}

export class NoWebGPUError extends Error {
  constructor(detail: string) {
    super(`no WebGPU adapter answered (${detail}); use --backend webasm on machines without a GPU`);
    this.name = 'NoWebGPUError';
  }
}

/** The largest array one webasm or cpu kernel addresses exactly: gpu.js's index arithmetic there is float32. */
const CPU_INDEX_FLOATS = 2 ** 24;

type WebGPUFound = { readonly opened: OpenedAdapter } | { readonly none: string };
const found = new Map<string, Promise<WebGPUFound>>();

/**
 * The WebGPU adapter this process would run on: `device` (Dawn's N-th adapter) when given, else the
 * first GPU, else the first (software) adapter; `none` says why there is none. Refusals of an index
 * (AdapterIndexError, AdapterChoiceError) are thrown.
 */
function findWebGPU(device: number | undefined): Promise<WebGPUFound> {
  const key = device === undefined ? 'first' : String(device);
  let f = found.get(key);
  if (!f) {
    f = lookForWebGPU(device);
    found.set(key, f);
  }
  return f;
}

/**
 * Throws now what Device.create(requested) would throw later for want of an adapter (NoWebGPUError, or the
 * adapter index's error): a command checks before long work, such as decoding a data set. The adapter found
 * is kept for Device.create. Nothing to check for webasm, cpu or auto (auto falls back to webasm).
 */
export async function checkBackendAvailable(requested: RequestedBackend, device?: number): Promise<void> {
  if (requested !== 'webgpu') return;
  const f = await findWebGPU(device);
  if ('none' in f) throw new NoWebGPUError(f.none);
}

async function lookForWebGPU(device: number | undefined): Promise<WebGPUFound> {
  // where Dawn would find no Vulkan driver it is not asked (it would print native warnings first)
  const noVulkan = whyNoVulkan();
  if (noVulkan !== null) return { none: noVulkan };
  let list: ListedAdapter[];
  try {
    list = await listAdapters();
  } catch (e) {
    return { none: `Dawn could not list its adapters: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (list.length === 0) return { none: 'navigator.gpu.requestAdapter() returned null' };
  if (device !== undefined) return { opened: await openAdapter(list, device) };
  // no index asked for: the first GPU (Dawn lists GPUs first), else the first adapter
  let first: OpenedAdapter | null = null;
  for (const i of list.keys()) {
    const route = routeTo(list, i);
    if (route.kind === 'shared' && (route.rank > 0 || route.shadowedBy !== null)) continue;
    const peeked = await openAdapter(list, i, { peek: true });
    if (!peeked.info.software) return { opened: route.kind === 'name' ? peeked : await openAdapter(list, i) };
    if (i === 0 && route.kind === 'name') first = peeked;
  }
  return { opened: first ?? (await openAdapter(list, 0)) };
}

/**
 * Gives Node a `navigator.gpu` from Dawn (the `webgpu` npm package): Dawn's first GPU, else its first
 * adapter. Resolves whether an adapter answers. A process that has opened one already (Device.create)
 * keeps it: gpu.js and every other user of navigator.gpu in the process share that adapter.
 */
export async function installWebGPU(): Promise<boolean> {
  if (installedAdapter() !== null) return true;
  try {
    const f = await findWebGPU(undefined);
    if ('none' in f) return false;
    installAdapter(f.opened);
    return true;
  } catch {
    return false;
  }
}

let autoNoted = false;

/** Which WebGPU adapter a device opens. */
export interface AdapterChoice {
  /** `--device N`: Dawn's N-th adapter; absent: the first GPU, else the first adapter. */
  readonly device?: number;
  /**
   * webasm: the threads a kernel runs on. 1: the calling thread only (no worker threads, gpu.js's
   * poolSize 0); N >= 2: a pool of N worker threads; absent: one worker thread per core this process may
   * run on. webgpu and cpu ignore it (gpu.js's cpu mode has no worker threads). On 2 cores two workers ran
   * fastest with one thread each (launch gives each half the cores).
   */
  readonly threads?: number;
}

/** The GPU reported errors (WebGPU's uncaptured errors) while some work ran: its results cannot be trusted. */
export class GpuError extends Error {
  constructor(
    readonly during: string,
    readonly errors: readonly string[],
  ) {
    const oom = errors.some((e) => /out of memory|OutOfMemory/i.test(e));
    super(
      `the GPU reported ${errors.length === 1 ? 'an error' : `${errors.length} errors`} during ${during}: ${errors[0]}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` +
        (oom ? '; the work does not fit in the GPU memory: try a smaller batch' : ''),
    );
    this.name = 'GpuError';
  }
}

export interface FallbackPolicy {
  /** 'throw' in tests and benchmarks; 'warn' prints once per kernel and carries on. */
  onFallback: 'throw' | 'warn';
  warn?: (msg: string) => void;
}

/** What gpu.js exposes about a compiled kernel, read back after its first run. */
interface KernelIntrospection {
  kernel?: { constructor?: { mode?: string }; fallbackReason?: string | null };
}

/**
 * A kernel result that stays in device memory (gpu.js's WebGPU buffer handle,
 * from kernels created with `pipeline: true, immutable: true`). It can be
 * passed straight to the next kernel; reading it costs a copy back.
 */
export interface ResidentTensor {
  toArray(): Promise<unknown>;
  delete(): void;
}

/** What flows between kernels: a host array, or (on webgpu) a device-resident buffer. */
export type DeviceTensor = Float32Array | ResidentTensor;

export class Device {
  readonly executed = new Map<string, string>();
  private warned = new Set<string>();
  /**
   * Whether kernel results stay on the device. On webgpu they do, so that a
   * tower's work between two crossings never round-trips through JavaScript;
   * on webasm and cpu "device memory" is host memory anyway.
   */
  readonly resident: boolean;
  /** Results read back to the host (toHost calls on resident tensors): the round trips. */
  readbacks = 0;
  /** Host arrays copied to the device (upload calls with a host array on a resident device). */
  uploads = 0;
  /** Bytes of those read-backs and uploads. */
  readbackBytes = 0;
  uploadBytes = 0;
  private readonly arena = new Set<ResidentTensor>();
  private readonly kept = new Set<ResidentTensor>();

  /**
   * The largest array one kernel may address, in floats; layers cut bigger work into blocks of at most
   * this many. webasm and cpu: 2^24 (64 MiB: layers cut in blocks this size keep each kernel's memory small; indices are exact beyond it).
   * webgpu: the adapter's largest storage binding (indices are exact i32 there: see strictIntegers in
   * kernels/kernel-runner.ts and patches/gpu.js+*.patch).
   */
  readonly maxKernelFloats: number;

  /** webgpu: waits until the GPU has done all work submitted so far (the kernel profile's GPU time); null elsewhere. */
  readonly queueDrain: QueueDrain;

  private constructor(
    readonly mode: BackendMode,
    readonly gpu: GPU,
    readonly policy: FallbackPolicy,
    maxBindingBytes: number | null,
    /** The WebGPU adapter the kernels run on (webgpu mode); null on webasm and cpu. */
    readonly adapter: AdapterInfo | null = null,
    /** Why `auto` chose webasm although an adapter answered (a software one), in a few words; null otherwise. */
    readonly note: string | null = null,
    /** webasm and cpu: the threads a kernel runs on (AdapterChoice.threads); null: one per core. */
    readonly threads: number | null = null,
  ) {
    this.maxKernelFloats = maxBindingBytes === null ? CPU_INDEX_FLOATS : Math.floor(maxBindingBytes / 4);
    this.resident = mode === 'webgpu';
    this.queueDrain = mode === 'webgpu' ? drainQueue : null;
  }

  /** The kernels made on this device (kernel-runner.ts), until reset() frees them. */
  private readonly kernels = new Set<{ destroy(): void }>();

  /** Registers a kernel made on this device: reset() frees it. */
  adopt(k: { destroy(): void }): void {
    this.kernels.add(k);
  }

  /** Kernels made and not freed (every tower, crossing and update kernel of the runs since the last reset). */
  get kernelCount(): number {
    return this.kernels.size;
  }

  /**
   * Frees everything a run put on this device: its kernels (gpu.js would keep each for the life of the process:
   * a worker configured again, after its peer was restarted or for a resumed run, would hold every earlier run's
   * kernels and their memory) and every resident tensor, kept ones (parameters, momentum) included. For when
   * a run is replaced; nothing made before may be used after it.
   */
  reset(): void {
    // the tensors first, while the kernels that made them still stand
    for (const t of this.arena) t.delete();
    for (const t of this.kept) if (!this.arena.has(t)) t.delete();
    this.arena.clear();
    this.kept.clear();
    for (const k of this.kernels) k.destroy();
    this.kernels.clear();
  }

  /** Registers a resident result; it lives until the next release() unless kept. */
  track(t: ResidentTensor): void {
    this.arena.add(t);
  }

  /** Keeps a resident tensor across release() (parameters and momentum); `drop` frees one kept before. */
  keep(t: DeviceTensor): void {
    if (!(t instanceof Float32Array)) this.kept.add(t);
  }

  drop(t: DeviceTensor): void {
    if (t instanceof Float32Array) return;
    this.kept.delete(t);
    this.arena.delete(t);
    t.delete();
  }

  /** Frees every resident result of the step that was not kept (called after each update). */
  release(): void {
    for (const t of this.arena) if (!this.kept.has(t)) t.delete();
    for (const t of [...this.arena]) if (!this.kept.has(t)) this.arena.delete(t);
  }

  private uploaders = new Map<number, (a: Float32Array) => Promise<unknown>>();

  /**
   * A host array as a device tensor (a copy kernel on webgpu; the array itself
   * elsewhere). On webgpu every kernel argument that can be a device tensor is
   * always one: gpu.js rebuilds a kernel whose argument types change between
   * calls, and a rebuilt kernel refused the buffers of its predecessor.
   */
  async upload(a: DeviceTensor): Promise<DeviceTensor> {
    if (!this.resident || !(a instanceof Float32Array)) return a;
    let up = this.uploaders.get(a.length);
    if (!up) {
      const create = this.gpu.createKernel as unknown as (f: (this: { thread: { x: number } }, v: Float32Array) => number, s: object) => (v: Float32Array) => Promise<unknown>;
      up = create.call(this.gpu, function (v: Float32Array) {
        return v[this.thread.x]!;
      }, { output: [a.length], pipeline: true, immutable: true });
      this.uploaders.set(a.length, up);
    }
    this.uploads++;
    this.uploadBytes += a.byteLength;
    const t = (await profiled('upload', 'upload', a.length * 4, false, this.queueDrain, () => up(a))) as ResidentTensor;
    this.track(t);
    return t;
  }

  /** The values of a tensor as a host array (a copy back from the GPU for resident ones). */
  async toHost(t: DeviceTensor, length?: number): Promise<Float32Array> {
    if (t instanceof Float32Array) return t;
    this.readbacks++;
    const r = await profiled('read-back', 'read-back', (length ?? 0) * 4, false, this.queueDrain, () => t.toArray());
    const flat = r instanceof Float32Array ? r : null;
    if (!flat || (length !== undefined && flat.length !== length)) throw new Error(`read back ${flat ? flat.length : typeof r} values, expected ${length}`);
    this.readbackBytes += flat.byteLength;
    return flat;
  }

  /**
   * A device in the mode asked for. `auto` is webgpu on a GPU and webasm otherwise: a software adapter
   * (a CPU rasteriser such as Mesa's lavapipe) is never chosen for training by `auto`, which says so
   * once (policy.warn, else stderr); `webgpu` asked for runs on whatever adapter answers, software included.
   * `choice.device` picks Dawn's N-th adapter (throws AdapterIndexError / AdapterChoiceError when
   * there is none or it cannot be opened apart from an identical one); webasm and cpu ignore it.
   */
  static async create(requested: RequestedBackend, policy: FallbackPolicy = { onFallback: 'throw' }, choice: AdapterChoice = {}): Promise<Device> {
    const threads = choice.threads ?? null;
    if (threads !== null && !(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a whole number >= 1, got ${threads}`);
    if (requested === 'webasm' || requested === 'cpu') return new Device(requested, new GPU({ mode: requested }), policy, null, null, null, threads);
    const f = await findWebGPU(choice.device);
    if ('none' in f) {
      if (requested === 'webgpu') throw new NoWebGPUError(f.none);
      return new Device('webasm', new GPU({ mode: 'webasm' }), policy, null, null, null, threads);
    }
    const info = f.opened.info;
    if (requested === 'auto' && info.software) {
      const which = choice.device === undefined ? 'the only WebGPU adapter here is a software one' : `--device ${choice.device} is a software adapter`;
      const note = `auto chose webasm: ${which}, ${describeAdapter(info)}; --backend webgpu runs on it anyway`;
      if (!autoNoted) {
        autoNoted = true;
        (policy.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`)))(note);
      }
      return new Device('webasm', new GPU({ mode: 'webasm' }), policy, null, null, `auto does not train on the software adapter ${info.index} '${info.name}'`, threads);
    }
    installAdapter(f.opened);
    setWebgpuBatch(webgpuBatchFromEnv());
    await watchGpuErrors();
    return new Device('webgpu', new GPU({ mode: 'webgpu' }), policy, f.opened.maxBindingBytes, info);
  }

  /** Called after a kernel's run: compares the mode that executed with the one asked for. */
  checkKernel(name: string, kernel: unknown): void {
    const k = kernel as KernelIntrospection;
    const ran = k.kernel?.constructor?.mode ?? 'unknown';
    this.checkRan(name, ran, k.kernel?.fallbackReason ?? null);
  }

  checkRan(name: string, ran: string, reason: string | null): void {
    this.executed.set(name, ran);
    if (ran === this.mode) return;
    const err = new BackendFallbackError(name, this.mode, ran, reason);
    if (this.policy.onFallback === 'throw') throw err;
    if (!this.warned.has(name)) {
      this.warned.add(name);
      (this.policy.warn ?? ((m: string) => process.stderr.write(`warning: ${m} (slower than asked)\n`)))(err.message);
    }
  }

  /**
   * webgpu: throws a GpuError naming `during` if the GPU reported errors since the last check (out of memory,
   * a validation error: the work they spoiled computed nothing or garbage, which gpu.js does not raise). The
   * device is shared by the process: any of its users' errors count. Nothing on the CPU modes.
   */
  checkGpuErrors(during: string): void {
    const errors = this.takeGpuErrors();
    if (errors.length > 0) throw new GpuError(during, errors);
  }

  /**
   * webgpu: runs `work` between two checks for the GPU's errors: those reported before it (a parameter upload,
   * work given up: they spoil it too) as "the work before WHAT", then its own as WHAT.
   */
  async checked<T>(what: string, work: () => Promise<T>): Promise<T> {
    this.checkGpuErrors(`the work before ${what}`);
    const result = await work();
    this.checkGpuErrors(what);
    return result;
  }

  /** webgpu: the GPU's errors since the last check, forgotten (for work whose results are dropped anyway); none on the CPU modes. */
  takeGpuErrors(): string[] {
    return this.mode === 'webgpu' ? takeGpuErrors() : [];
  }

  /**
   * webgpu: resolves if the GPU device is lost (its kernels fail from then on, and the parameters and
   * results held on it are gone: only a new process, given them again, goes on). Never resolves on the CPU
   * modes.
   */
  whenLost(): Promise<DeviceLoss> {
    return this.mode === 'webgpu' ? gpuDeviceLost() : new Promise<DeviceLoss>(() => {});
  }

  destroy(): void {
    this.gpu.destroy();
  }
}
