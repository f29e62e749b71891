/**
 * Manual runner for the TensorFlow.js peer:
 *   node --import tsx bench/peer/run-tfjs-peer.ts [preset=cifar] [batch=64] [threads]
 */
import { getPreset } from '../../packages/core/src/model/presets.js';
import { runTfjsPeer } from './tfjs-alexnet.js';

const [presetArg = 'cifar', batchArg = '64', threadsArg] = process.argv.slice(2);
const spec = getPreset(presetArg);
const batch = Number(batchArg);
const threads = threadsArg === undefined ? undefined : Number(threadsArg);

const r = await runTfjsPeer({ spec, batch, warmup: 2, iters: 5, threads, seed: 1 });
console.log(r.description);
console.log(`preset ${spec.name}, batch ${batch}, threads ${r.threads}`);
console.log(`step ms: ${r.stepMs.map((t) => t.toFixed(0)).join(' ')}`);
console.log(`median step ${r.medianStepMs.toFixed(1)} ms, ${r.imagesPerSec.toFixed(1)} images/s`);
console.log(`fallback kernels: ${r.fallbacks.join(', ') || 'none'}`);
