/**
 * `npm run bench -- --preset cifar --backend webasm --batch 64 [--json]`
 *
 * Times one full training step (forward, backward, update) of the one-process
 * grouped trainer: median of --iters steps after --warmup, on random images.
 * In the same run, the same model, batch and update written with TensorFlow.js
 * on its WASM backend (bench/peer/tfjs-alexnet.ts), so that the ratio is
 * measured on the same machine at the same time.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { GroupedTrainer, Rng, backendChoices, forwardMacs, getPreset, kernelProfile, median, presetNames, startKernelProfile, type RequestedBackend } from '@alexnet-mp/core';
import { mallocDescription } from '@alexnet-mp/coordinator';
import { runTfjsPeer } from './peer/tfjs-alexnet.js';

const argv = await yargs(hideBin(process.argv))
  .usage('npm run bench -- [options]\n\nTimes one training step of alexnet-mp and of a TensorFlow.js peer.')
  .option('preset', { choices: presetNames, default: 'cifar' as const, describe: 'model preset' })
  .option('backend', { choices: backendChoices, default: 'webasm' as RequestedBackend, describe: 'gpu.js mode (auto: webgpu if an adapter answers, else webasm)' })
  .option('batch', { type: 'number', default: 64, describe: 'images per step' })
  .option('iters', { type: 'number', default: 5, describe: 'timed steps (median reported)' })
  .option('warmup', { type: 'number', default: 1, describe: 'untimed steps first (kernels compile on the first)' })
  .option('peer', { choices: ['tfjs', 'none'] as const, default: 'tfjs' as const, describe: 'the peer measured in the same run' })
  .option('peer-threads', { type: 'number', describe: "threads for the tfjs wasm backend (default: tfjs's own default)" })
  .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
  .option('profile', { type: 'boolean', default: false, describe: 'print time per kernel for one step' })
  .strict()
  .version(false)
  .help()
  .parseAsync();

const spec = getPreset(argv.preset);
const B = argv.batch;
const log = (s: string) => {
  if (!argv.json) process.stdout.write(s + '\n');
};

const rng = new Rng(1);
const S = spec.inputSize;
const images = Float32Array.from({ length: 3 * B * S * S }, () => rng.normal());
const labels = Float32Array.from({ length: B }, () => rng.int(spec.classes));

const trainer = await GroupedTrainer.create({ spec, backend: argv.backend, batch: B, seed: 1 });
log(`alexnet-mp: preset ${spec.name}, batch ${B}, gpu.js mode ${trainer.device.mode}, ${os.cpus().length} CPU cores; ${mallocDescription()} (both alexnet-mp and the peer)`);
for (let i = 0; i < argv.warmup; i++) await trainer.trainStep({ images, labels });
const times: number[] = [];
// the main thread's garbage-collection pauses during the timed steps (reused-output.ts says why they matter)
let gcPauses = 0;
let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcPauses++;
    gcMs += e.duration;
  }
});
gcObserver.observe({ entryTypes: ['gc'] });
const cpu0 = process.cpuUsage();
for (let i = 0; i < argv.iters; i++) {
  if (argv.profile && i === argv.iters - 1) startKernelProfile();
  const t0 = performance.now();
  await trainer.trainStep({ images, labels });
  times.push(performance.now() - t0);
  log(`  step ${i + 1}/${argv.iters}: ${times[i]!.toFixed(0)} ms`);
}
const cpu = process.cpuUsage(cpu0);
gcObserver.disconnect();
const cpuSecondsPerStep = (cpu.user + cpu.system) / 1e6 / argv.iters;
const gcPausesPerStep = gcPauses / argv.iters;
const gcMsPerStep = gcMs / argv.iters;
const modes = trainer.executedModes();
trainer.destroy();
const stepMs = median(times);
const imagesPerSec = (B / stepMs) * 1000;
// forward multiply-adds x 2 flops x 3 (forward, input gradient, weight gradient)
const gflops = (forwardMacs(spec) * 2 * 3 * B) / (stepMs / 1000) / 1e9;
log(`alexnet-mp: ${imagesPerSec.toFixed(1)} images/s (median step ${stepMs.toFixed(0)} ms), ${gflops.toFixed(2)} GFLOP/s, kernels ran on: ${modes.join(', ')}`);
log(`alexnet-mp: ${cpuSecondsPerStep.toFixed(2)} CPU seconds a step (all threads); main-thread GC ${gcPausesPerStep.toFixed(1)} pauses, ${gcMsPerStep.toFixed(0)} ms a step`);
if (argv.profile) {
  const kernels = kernelProfile();
  for (const k of kernels.slice(0, 25)) log(`    ${k.name.padEnd(28)} ${k.ms.toFixed(0).padStart(6)} ms  (${k.calls} calls)`);
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  const resultBytes = kernels.reduce((a, k) => a + k.bytes, 0);
  const reusedBytes = kernels.reduce((a, k) => a + (k.reused ? k.bytes : 0), 0);
  log(`    kernel results of that step: ${mib(resultBytes)} MiB, ${mib(reusedBytes)} MiB of them into reused buffers (reused-output.ts)`);
}

let peer: Awaited<ReturnType<typeof runTfjsPeer>> | null = null;
if (argv.peer === 'tfjs') {
  log('peer: TensorFlow.js, same model, batch and update ...');
  peer = await runTfjsPeer({ spec, batch: B, warmup: argv.warmup, iters: argv.iters, threads: argv['peer-threads'] });
  log(`peer: ${peer.imagesPerSec.toFixed(1)} images/s (median step ${peer.medianStepMs.toFixed(0)} ms): ${peer.description}`);
  if (peer.fallbacks.length > 0) log(`peer: kernels missing from tfjs-backend-wasm, registered as plain JavaScript fallbacks: ${peer.fallbacks.join(', ')}`);
  log(`ratio (alexnet-mp / peer): ${(imagesPerSec / peer.imagesPerSec).toFixed(2)}`);
}

if (argv.json) {
  process.stdout.write(
    JSON.stringify({
      preset: spec.name,
      backend: trainer.device.mode,
      batch: B,
      imagesPerSec,
      medianStepMs: stepMs,
      gflops,
      cpuSecondsPerStep,
      gcPausesPerStep,
      gcMsPerStep,
      kernelModes: modes,
      peer: peer ? peer.description : null,
      peerThreads: peer?.threads ?? null,
      peerFallbacks: peer?.fallbacks ?? null,
      peerImagesPerSec: peer?.imagesPerSec ?? null,
      ratio: peer ? imagesPerSec / peer.imagesPerSec : null,
      cpus: os.cpus().length,
      malloc: mallocDescription(),
    }) + '\n',
  );
}
