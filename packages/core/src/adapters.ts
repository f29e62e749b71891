/**
 * The WebGPU adapters Dawn offers, and how to open the N-th. Dawn's node bindings
 * (the `webgpu` package) open an adapter by name only: the flag `adapter=NAME`
 * makes `requestAdapter()` return the first adapter whose name contains NAME, and
 * a NAME no adapter has makes it reject with the list:
 *
 *     no suitable backends found
 *     Available adapters:
 *      * backend: 'vulkan', name: 'NVIDIA H200'
 *      * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'
 *
 * The list is in the order `requestAdapter()` walks (Dawn puts GPUs before
 * software adapters), so "device N" is its N-th line. This module is the pure
 * part: parsing that text, deciding whether a name reaches adapter N, the errors.
 */

/** One line of Dawn's adapter list. */
export interface ListedAdapter {
  /** Dawn's backend: 'vulkan', 'metal', 'd3d12', ... */
  readonly backend: string;
  /** The adapter's device name as the driver gives it ('NVIDIA H200'). */
  readonly name: string;
}

/** What a worker reports about the adapter its device runs on (the handshake, Status, its first log line). */
export interface AdapterInfo {
  /** Its position in Dawn's list: the `--device` index. */
  readonly index: number;
  readonly name: string;
  readonly backend: string;
  /** What Dawn's GPUAdapterInfo gives: vendor ('nvidia', 'mesa'), architecture ('hopper', 'software'), device, description. */
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** A software rasteriser (isFallbackAdapter, architecture 'software', or a known CPU driver): it runs on the CPU. */
  readonly software: boolean;
  /** The PCI address, when the adapter was told apart from an identical one by it. */
  readonly pci?: string;
}

const HEADER = 'Available adapters:';
const LINE = /^\s*\*\s*backend:\s*'([^']*)',\s*name:\s*'(.*)'\s*$/;

/** The adapters in Dawn's "Available adapters:" text, in its order; null when the text has no such list. */
export function parseAvailableAdapters(text: string): ListedAdapter[] | null {
  const at = text.indexOf(HEADER);
  if (at < 0) return null;
  const out: ListedAdapter[] = [];
  for (const line of text.slice(at + HEADER.length).split('\n')) {
    const m = LINE.exec(line);
    if (m) out.push({ backend: m[1]!, name: m[2]! });
  }
  return out;
}

/** "0 'NVIDIA H200' (vulkan), 1 'llvmpipe (LLVM 15.0.6, 256 bits)' (vulkan)" */
export function describeList(list: readonly ListedAdapter[]): string {
  return list.length === 0 ? 'none' : list.map((a, i) => `${i} '${a.name}' (${a.backend})`).join(', ');
}

/** How adapter `index` is opened. */
export type AdapterRoute =
  /** Dawn's `adapter=` flag reaches it: no adapter before it has a name containing its own, and none shares it. */
  | { readonly kind: 'name'; readonly flag: string }
  /**
   * The name flag cannot single it out: `twins` (its index among them: `rank`) share its exact name, or an
   * earlier adapter's name contains it (`shadowedBy`). Only something that tells devices apart below Dawn can open it.
   */
  | { readonly kind: 'shared'; readonly name: string; readonly twins: readonly number[]; readonly rank: number; readonly shadowedBy: number | null };

/** `--device N` where Dawn lists no adapter N. */
export class AdapterIndexError extends Error {
  constructor(readonly index: number, readonly list: readonly ListedAdapter[]) {
    super(`--device ${index}: there is no WebGPU adapter ${index} here; the adapters are ${describeList(list)} (--device 0..${list.length - 1})`);
    this.name = 'AdapterIndexError';
  }
}

/** `--device N` names an adapter that nothing available here can open apart from another. */
export class AdapterChoiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterChoiceError';
  }
}

/** Decides how to open adapter `index` of `list`; throws AdapterIndexError when there is none. */
export function routeTo(list: readonly ListedAdapter[], index: number): AdapterRoute {
  if (!Number.isInteger(index) || index < 0 || index >= list.length) throw new AdapterIndexError(index, list);
  const name = list[index]!.name;
  const twins = list.flatMap((a, i) => (a.name === name ? [i] : []));
  const earlier = list.slice(0, index).findIndex((a) => a.name.includes(name));
  if (twins.length === 1 && earlier < 0) return { kind: 'name', flag: `adapter=${name}` };
  return { kind: 'shared', name, twins, rank: twins.indexOf(index), shadowedBy: earlier < 0 || twins.includes(earlier) ? null : earlier };
}

/** Why the name flag cannot open adapter `index` (the start of a refusal). */
export function sharedReason(index: number, route: Extract<AdapterRoute, { kind: 'shared' }>): string {
  const others = route.twins.filter((i) => i !== index);
  if (others.length > 0) return `--device ${index}: adapters ${route.twins.join(', ').replace(/, (\d+)$/, ' and $1')} ${route.twins.length === 2 ? 'are both' : 'are all'} named '${route.name}' and Dawn opens an adapter by name only`;
  return `--device ${index}: Dawn opens an adapter by name only and adapter ${route.shadowedBy}'s name contains '${route.name}'`;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|warp/i;

/** Whether what Dawn says about an adapter marks it as a software rasteriser. */
export function isSoftwareAdapter(info: { readonly isFallbackAdapter?: boolean; readonly vendor?: string; readonly architecture?: string; readonly description?: string }, name: string): boolean {
  return info.isFallbackAdapter === true || /software|cpu/i.test(info.architecture ?? '') || SOFTWARE_NAMES.test(name) || SOFTWARE_NAMES.test(info.description ?? '');
}

/**
 * "adapter 1 'NVIDIA H200' (nvidia hopper, vulkan)"; a software one says so:
 * "adapter 0 'llvmpipe (LLVM 15.0.6, 256 bits)' (mesa, vulkan; a software adapter: it runs on the CPU)".
 */
export function describeAdapter(a: AdapterInfo): string {
  const what = [a.vendor, a.software ? '' : a.architecture].filter(Boolean).join(' ') || 'vendor not given';
  const where = a.pci ? `, PCI ${a.pci}` : '';
  return `adapter ${a.index} '${a.name}' (${what}, ${a.backend}${where}${a.software ? '; a software adapter: it runs on the CPU' : ''})`;
}

/** Where kernels of gpu.js mode `mode` run, in words: "webgpu on adapter 0 'NAME' (...)" with an adapter, else the mode. */
export function describeMode(mode: string, adapter: AdapterInfo | null): string {
  return mode === 'webgpu' && adapter ? `webgpu on ${describeAdapter(adapter)}` : mode;
}
