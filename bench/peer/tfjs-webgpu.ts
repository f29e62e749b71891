/**
 * TensorFlow.js peer on its WebGPU backend (@tensorflow/tfjs-backend-webgpu), in Node: the same
 * model, batch and update as the wasm peer (tfjs-model.ts), on the GPU that alexnet-mp's webgpu
 * mode uses.
 *
 * What differs from a stock tfjs setup, and why:
 *  - tfjs-backend-webgpu registers its backend when it is loaded, and only where
 *    `globalThis.navigator.gpu` exists then. In Node that is Dawn's, from the `webgpu` npm package
 *    (`Object.assign(globalThis, globals); navigator = { gpu: create([]) }`): packages/core's
 *    installWebGPU sets it up, the same one gpu.js's webgpu mode uses, and only then is the
 *    backend's package loaded (a dynamic import, never a static one).
 *  - tfjs-core's Node bundle registers no gradients: `registerGradients` (tfjs-model.ts) registers
 *    the seven this graph's backward path needs. Every kernel of the step is the WebGPU backend's
 *    own (it has Conv2DBackpropFilter, LRNGrad and MaxPoolGrad): no fallback.
 *  - The backend's synchronous read-back needs OffscreenCanvas, which Node lacks: the loss of each
 *    step is read with `await data()` (timeTfjsSteps).
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import type { ModelSpec } from '../../packages/core/src/model/spec.js';
import { installWebGPU } from '../../packages/core/src/device.js';
import { whyNoVulkan } from '../../packages/core/src/vulkan-presence.js';
import { MODEL_DESCRIPTION, TFJS_VERSION, registerGradients, timeTfjsSteps, type PeerResult } from './tfjs-model.js';

const require = createRequire(import.meta.url);

export interface TfjsWebGPUPeerOptions {
  spec: ModelSpec;
  batch: number;
  warmup: number;
  iters: number;
  seed?: number;
}

/** The adapter tfjs's backend got, in words (vendor, architecture, device, description). */
let adapterName = '';

/** Why the WebGPU peer cannot run here (no Vulkan loader or driver, no adapter), or null when it can. */
export async function whyNoTfjsWebGPU(): Promise<string | null> {
  const noVulkan = whyNoVulkan();
  if (noVulkan !== null) return noVulkan;
  if (!(await installWebGPU())) return 'navigator.gpu.requestAdapter() returned null';
  return null;
}

/**
 * Sets tfjs's backend to 'webgpu' (navigator.gpu first, then the backend's package, then the
 * gradients); returns the gradients registered here and the adapter's name. Throws, saying why,
 * where no WebGPU adapter answers.
 */
export async function setUpTfjsWebGPU(): Promise<{ gradients: string[]; adapter: string }> {
  const why = await whyNoTfjsWebGPU();
  if (why !== null) throw new Error(`TensorFlow.js WebGPU peer: ${why}`);
  if (tf.findBackendFactory('webgpu') == null) {
    // registers the 'webgpu' backend now that navigator.gpu exists (its module checks once, on load)
    await import('@tensorflow/tfjs-backend-webgpu');
    if (tf.findBackendFactory('webgpu') == null) throw new Error('TensorFlow.js WebGPU peer: @tensorflow/tfjs-backend-webgpu registered no backend (navigator.gpu missing when it loaded)');
  }
  const gradients = registerGradients();
  if (!(await tf.setBackend('webgpu'))) throw new Error('TensorFlow.js WebGPU peer: the webgpu backend did not initialise');
  await tf.ready();
  // the backend keeps only vendor and architecture: ask the same adapter (tfjs asks for high-performance) for the rest
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(o: object): Promise<{ info?: Record<string, string> } | null> } } }).navigator.gpu;
  const info = (await gpu.requestAdapter({ powerPreference: 'high-performance' }))?.info;
  adapterName = [info?.vendor, info?.architecture, info?.description].filter((s) => s !== undefined && s !== '').join(', ') || 'unnamed adapter';
  return { gradients, adapter: adapterName };
}

export async function runTfjsWebGPUPeer(opts: TfjsWebGPUPeerOptions): Promise<PeerResult> {
  const { gradients, adapter } = await setUpTfjsWebGPU();
  const timed = await timeTfjsSteps(opts);
  const version = (require('@tensorflow/tfjs-backend-webgpu/package.json') as { version: string }).version;
  const description =
    `TensorFlow.js ${TFJS_VERSION} WebGPU backend (tfjs-backend-webgpu ${version}, Dawn from the webgpu package, adapter: ${adapter}), ` +
    `${MODEL_DESCRIPTION}, no fallback kernels` +
    (gradients.length > 0 ? `; gradients registered here (tfjs-core's Node bundle ships none): ${gradients.join(', ')}` : '');
  return { ...timed, description, fallbacks: [], threads: 1 };
}
