/** Every WebGPU adapter of this machine and what it is (GPU or software): what `launch` gives its workers. */
import type { AdapterInfo } from './adapters.js';
import { whyNoVulkan } from './vulkan-presence.js';
import { listAdapters, peekAdapters } from './webgpu-adapter.js';

/** The adapters in Dawn's order (GPUs first); empty where Dawn has none or cannot run (on Linux: no Vulkan loader, or no Vulkan driver). */
export async function surveyAdapters(): Promise<AdapterInfo[]> {
  if (whyNoVulkan() !== null) return [];
  try {
    return await peekAdapters(await listAdapters());
  } catch {
    return [];
  }
}
