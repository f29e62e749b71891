/**
 * Telling identical GPUs apart. Dawn opens an adapter by name only, so two GPUs of one model
 * look the same to it. Below Dawn, Mesa's device-select Vulkan layer (an implicit layer that
 * Mesa's Vulkan drivers package installs, and that works for any vendor's Vulkan driver) can
 * expose a single device chosen by PCI address: `DRI_PRIME=pci-DOMAIN_BUS_DEV_FN` with
 * `MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1`. `MESA_VK_DEVICE_SELECT=list` makes it print
 * the devices with their addresses and exit, which a child process does here.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** One device as the layer lists it. */
export interface VulkanDevice {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly name: string;
  /** 'discrete GPU', 'integrated GPU', 'virtual GPU', 'CPU', 'other' */
  readonly type: string;
  /** '0000:18:00.0', or null when the driver does not give it (VK_EXT_pci_bus_info). */
  readonly pci: string | null;
}

const HEADER = 'selectable devices:';
const LINE = /^\s*GPU \d+: ([0-9a-f]+):([0-9a-f]+) "(.*)" (discrete GPU|integrated GPU|virtual GPU|CPU|other)(?: ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]))?\s*$/i;

/** The devices in the layer's list output (`MESA_VK_DEVICE_SELECT=list`, on stderr); null when there is no list (no layer). */
export function parseDeviceSelectList(text: string): VulkanDevice[] | null {
  const at = text.indexOf(HEADER);
  if (at < 0) return null;
  const out: VulkanDevice[] = [];
  for (const line of text.slice(at + HEADER.length).split('\n')) {
    const m = LINE.exec(line);
    if (m) out.push({ vendorId: parseInt(m[1]!, 16), deviceId: parseInt(m[2]!, 16), name: m[3]!, type: m[4]!, pci: m[5] ?? null });
  }
  return out;
}

/** '0000:18:00.0' -> 'pci-0000_18_00_0', the layer's DRI_PRIME tag. */
export function driPrimeTag(pci: string): string {
  return `pci-${pci.replace(/[:.]/g, '_')}`;
}

/** The environment that leaves the device at `pci` the only one Vulkan exposes to this process. */
export function isolationEnv(pci: string): Record<string, string> {
  return { DRI_PRIME: driPrimeTag(pci), MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' };
}

/** The PCI address of the `rank`-th device named `name` (in PCI address order), or why there is none. */
export function pickTwin(devices: readonly VulkanDevice[], name: string, rank: number): { pci: string } | { why: string } {
  const twins = devices.filter((d) => d.name === name);
  if (twins.length <= rank) return { why: `Mesa's device-select layer lists ${twins.length} device(s) named '${name}'` };
  if (twins.some((d) => d.pci === null)) return { why: `the driver gives no PCI address for '${name}' (VK_EXT_pci_bus_info), so Mesa's device-select layer cannot tell them apart either` };
  const sorted = twins.map((d) => d.pci!).sort();
  return { pci: sorted[rank]! };
}

/**
 * The Vulkan devices as Mesa's device-select layer lists them, from a child process (the layer
 * exits after listing); null when the layer is not active here (not installed, or NODEVICE_SELECT=1).
 */
export function listVulkanDevices(env: NodeJS.ProcessEnv = process.env): VulkanDevice[] | null {
  const webgpu = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  const script = `const { create } = await import(${JSON.stringify(webgpu)}); await create([]).requestAdapter().catch(() => null);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...env, MESA_VK_DEVICE_SELECT: 'list' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return parseDeviceSelectList(`${child.stderr ?? ''}\n${child.stdout ?? ''}`);
}
