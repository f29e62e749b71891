/**
 * Finding and opening a WebGPU adapter through Dawn's node bindings (the `webgpu` package), and
 * installing it as this process's `navigator.gpu`. gpu.js takes its device from a plain
 * `navigator.gpu.requestAdapter()`, once per process, so the `navigator.gpu` installed here
 * decides which adapter every kernel of the process runs on.
 */
import { paceDawnPolling } from './dawn-polling.js';
import {
  AdapterChoiceError,
  describeList,
  isSoftwareAdapter,
  parseAvailableAdapters,
  routeTo,
  sharedReason,
  type AdapterInfo,
  type AdapterRoute,
  type ListedAdapter,
} from './adapters.js';
import { isolationEnv, listVulkanDevices, pickTwin } from './device-select.js';

interface DawnAdapterInfo {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  readonly isFallbackAdapter?: boolean;
}
interface DawnAdapter {
  readonly info?: DawnAdapterInfo;
  readonly isFallbackAdapter?: boolean;
  readonly limits?: { readonly maxStorageBufferBindingSize?: number; readonly maxBufferSize?: number };
}
export interface DawnGpu {
  requestAdapter(): Promise<DawnAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

let dawnModule: Promise<DawnModule> | null = null;
function dawn(): Promise<DawnModule> {
  dawnModule ??= import('webgpu').then((m) => {
    const mod = m as unknown as DawnModule;
    Object.assign(globalThis, mod.globals);
    // Dawn polls for the GPU with setImmediate, flat out while it waits: paced (dawn-polling.ts)
    paceDawnPolling();
    return mod;
  });
  return dawnModule;
}

/** A flag value no adapter's name contains: Dawn then rejects with its list of adapters. */
const NO_SUCH_ADAPTER = 'adapter=alexnet-mp: list the adapters';

/** Dawn's adapters, in the order requestAdapter() walks them (empty when there is none). */
export async function listAdapters(): Promise<ListedAdapter[]> {
  const { create } = await dawn();
  try {
    const a = await create([NO_SUCH_ADAPTER]).requestAdapter();
    if (a === null) return [];
  } catch (e) {
    const list = parseAvailableAdapters(e instanceof Error ? e.message : String(e));
    if (list) return list;
    throw e;
  }
  throw new Error(`Dawn opened an adapter for the flag "${NO_SUCH_ADAPTER}" instead of listing them`);
}

/** An adapter opened on its own `navigator.gpu` instance: installing that instance gives gpu.js this adapter. */
export interface OpenedAdapter {
  readonly info: AdapterInfo;
  readonly gpu: DawnGpu;
  /** The largest storage binding the adapter offers, in bytes (gpu.js asks its device for all of it); null when not given. */
  readonly maxBindingBytes: number | null;
}

function maxBindingOf(adapter: DawnAdapter): number | null {
  const l = adapter.limits;
  const sizes = [l?.maxStorageBufferBindingSize, l?.maxBufferSize].filter((v): v is number => typeof v === 'number' && v > 0);
  return sizes.length ? Math.min(...sizes) : null;
}

function infoOf(adapter: DawnAdapter, index: number, listed: ListedAdapter, pci?: string): AdapterInfo {
  const i = adapter.info ?? {};
  const fallback = i.isFallbackAdapter ?? adapter.isFallbackAdapter;
  return {
    index,
    name: listed.name,
    backend: listed.backend,
    vendor: i.vendor ?? '',
    architecture: i.architecture ?? '',
    device: i.device ?? '',
    description: i.description ?? '',
    software: isSoftwareAdapter({ ...i, isFallbackAdapter: fallback }, listed.name),
    ...(pci ? { pci } : {}),
  };
}

/**
 * Opens adapter `index` of `list` (throws AdapterIndexError when there is none). A name Dawn's flag
 * cannot single out (two GPUs of one model) goes through isolate(); `peek`, which only wants to know
 * what kind of adapter it is, opens the first adapter of that name instead.
 */
export async function openAdapter(list: readonly ListedAdapter[], index: number, o: { peek?: boolean } = {}): Promise<OpenedAdapter> {
  const { create } = await dawn();
  const route = routeTo(list, index);
  let flags: string[];
  let pci: string | undefined;
  if (route.kind === 'name') flags = [route.flag];
  else if (o.peek) flags = [`adapter=${route.name}`];
  else {
    const isolated = await isolate(index, route);
    pci = isolated.pci;
    flags = isolated.flags;
  }
  const gpu = create(flags);
  const adapter = await gpu.requestAdapter();
  if (adapter === null) throw new AdapterChoiceError(`--device ${index}: adapter ${index} ('${list[index]!.name}') did not answer`);
  return { info: infoOf(adapter, index, list[index]!, pci), gpu, maxBindingBytes: maxBindingOf(adapter) };
}

/**
 * Opens one of several adapters the name flag cannot tell apart. Where Mesa's device-select layer is
 * active and the driver gives PCI addresses, identical GPUs are told apart by address (in address
 * order) and this process sees only the one asked for. Otherwise only the first of them, which the
 * name flag reaches, can be opened; any other is refused, saying why and what works.
 */
async function isolate(index: number, route: Extract<AdapterRoute, { kind: 'shared' }>): Promise<{ flags: string[]; pci?: string }> {
  const reachable = route.rank === 0 && route.shadowedBy === null;
  const why = sharedReason(index, route);
  const elsewhere = 'run each worker where only its GPU is visible (e.g. a container per GPU) with --device 0';
  const devices = listVulkanDevices();
  if (devices === null) {
    if (reachable) return { flags: [`adapter=${route.name}`] };
    throw new AdapterChoiceError(
      `${why}; Mesa's device-select Vulkan layer, which tells them apart by PCI address, is not active here: install Mesa's Vulkan drivers (the mesa-vulkan-drivers package has the layer) and leave NODEVICE_SELECT unset, or ${elsewhere}`,
    );
  }
  const twin = pickTwin(devices, route.name, route.rank);
  if ('why' in twin) {
    if (reachable) return { flags: [`adapter=${route.name}`] };
    throw new AdapterChoiceError(`${why}; ${twin.why}; ${elsewhere}`);
  }
  // the layer reads these when Dawn creates its Vulkan instance: from the next create() on, Vulkan shows one device
  for (const [k, v] of Object.entries(isolationEnv(twin.pci))) process.env[k] = v;
  delete process.env.MESA_VK_DEVICE_SELECT;
  const seen = await listAdapters();
  if (seen.length !== 1 || seen[0]!.name !== route.name) {
    throw new AdapterChoiceError(`${why}; Mesa's device-select layer was asked for the one at PCI ${twin.pci} but Dawn then lists ${describeList(seen)}; ${elsewhere}`);
  }
  return { flags: [], pci: twin.pci };
}

/** What each adapter is (GPU or software), for choosing one or counting GPUs; identical names are looked at once. */
export async function peekAdapters(list: readonly ListedAdapter[]): Promise<AdapterInfo[]> {
  const out: AdapterInfo[] = [];
  for (const [i, listed] of list.entries()) {
    const same = out.find((a) => a.name === listed.name);
    out.push(same ? { ...same, index: i } : (await openAdapter(list, i, { peek: true })).info);
  }
  return out;
}

let installed: { key: string; info: AdapterInfo } | null = null;

/** The adapter installed as this process's navigator.gpu, if any. */
export function installedAdapter(): AdapterInfo | null {
  return installed?.info ?? null;
}

/** Makes `opened` this process's navigator.gpu (once: gpu.js keeps one device per process). */
export function installAdapter(opened: OpenedAdapter): void {
  const key = `${opened.info.index}:${opened.info.name}`;
  if (installed) {
    if (installed.key === key) return;
    throw new AdapterChoiceError(`this process already runs on WebGPU adapter ${installed.info.index} ('${installed.info.name}'); gpu.js keeps one device per process, so adapter ${opened.info.index} needs a process of its own`);
  }
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: opened.gpu }, configurable: true, writable: true });
  installed = { key, info: opened.info };
}
