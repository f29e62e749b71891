/**
 * A device owns one gpu.js GPU in one mode and checks that every kernel runs
 * in the mode that was asked for: gpu.js silently degrades to `cpu` when a
 * kernel uses something a backend lacks, and this project never runs slower
 * than asked without saying so.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPU } from 'gpu.js';

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

const VULKAN_LOADER = 'libvulkan.so.1';
const SYSTEM_LIBRARY_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];

/**
 * Whether the dynamic linker can find the Vulkan loader, which Dawn needs on Linux. Without one,
 * Dawn writes a native warning with a source location to stderr when asked for an adapter, so
 * `auto` does not ask: on such a machine the answer (no adapter) is known beforehand.
 */
export function vulkanLoaderFindable(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'linux') return true;
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...SYSTEM_LIBRARY_DIRS];
  if (dirs.some((d) => existsSync(join(d, VULKAN_LOADER)))) return true;
  try {
    // the linker's cache names every library ldconfig found, wherever it lies
    return readFileSync('/etc/ld.so.cache').includes(VULKAN_LOADER);
  } catch {
    return false;
  }
}

let webgpuInstalled: Promise<boolean> | null = null;

/** Gives Node a `navigator.gpu` from Dawn (the `webgpu` npm package), once. Resolves whether an adapter answers. */
export function installWebGPU(): Promise<boolean> {
  webgpuInstalled ??= (async () => {
    try {
      const mod = (await import('webgpu')) as { create: (flags: string[]) => unknown; globals: Record<string, unknown> };
      Object.assign(globalThis, mod.globals);
      const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
      if (!g.navigator?.gpu) {
        Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: mod.create([]) }, configurable: true, writable: true });
      }
      const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } }).navigator.gpu;
      return (await gpu.requestAdapter()) !== null;
    } catch {
      return false;
    }
  })();
  return webgpuInstalled;
}

/** Why gpu.js's webgpu mode cannot run here, or null when a WebGPU adapter answers. */
async function whyNoWebGPU(): Promise<string | null> {
  if (!vulkanLoaderFindable()) return `Dawn needs the Vulkan loader, ${VULKAN_LOADER}, and the dynamic linker has none`;
  return (await installWebGPU()) ? null : 'navigator.gpu.requestAdapter() returned null';
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
  private readonly arena = new Set<ResidentTensor>();
  private readonly kept = new Set<ResidentTensor>();

  private constructor(readonly mode: BackendMode, readonly gpu: GPU, readonly policy: FallbackPolicy) {
    this.resident = mode === 'webgpu';
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
    const t = (await up(a)) as ResidentTensor;
    this.track(t);
    return t;
  }

  /** The values of a tensor as a host array (a copy back from the GPU for resident ones). */
  async toHost(t: DeviceTensor, length?: number): Promise<Float32Array> {
    if (t instanceof Float32Array) return t;
    this.readbacks++;
    const r = await t.toArray();
    const flat = r instanceof Float32Array ? r : null;
    if (!flat || (length !== undefined && flat.length !== length)) throw new Error(`read back ${flat ? flat.length : typeof r} values, expected ${length}`);
    return flat;
  }

  static async create(requested: RequestedBackend, policy: FallbackPolicy = { onFallback: 'throw' }): Promise<Device> {
    let mode: BackendMode;
    if (requested === 'auto') {
      mode = (await whyNoWebGPU()) === null ? 'webgpu' : 'webasm';
    } else {
      mode = requested;
      const why = mode === 'webgpu' ? await whyNoWebGPU() : null;
      if (why !== null) throw new NoWebGPUError(why);
    }
    const gpu = new GPU({ mode });
    return new Device(mode, gpu, policy);
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

  destroy(): void {
    this.gpu.destroy();
  }
}
