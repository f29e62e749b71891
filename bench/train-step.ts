/**
 * `npm run bench -- --preset cifar --backend webasm --batch 64 [--json]`
 *
 * Times one full training step (forward, backward, update) of the one-process
 * grouped trainer: median of --iters steps after --warmup, on random images.
 * In the same run, on the same model, batch and update (the paper's SGD):
 *  - on webasm/cpu: TensorFlow.js on its WASM backend (bench/peer/tfjs-alexnet.ts);
 *  - on webgpu: alexnet-mp's two workers (bench/two-workers.ts), TensorFlow.js on its WebGPU
 *    backend (bench/peer/tfjs-webgpu.ts) and PyTorch where `python3` imports torch
 *    (bench/peer/torch_alexnet.py, cuda when it sees a GPU);
 * and each ratio alexnet-mp / peer. `--peer` and `--two-workers` choose other sets.
 * A part that fails (a batch webgpu refuses, say) is reported in one line and the others still
 * run; the exit status is then 1.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { readdirSync } from 'node:fs';
import { GroupedTrainer, Rng, backendChoices, countDeviceObjects, forwardMacs, webgpuBatchFromEnv, getPreset, kernelProfile, launchCount, median, paperSgd, presetNames, startKernelProfile, stopKernelProfile, type BackendMode, type RequestedBackend } from '@alexnet-mp/core';
import { mallocDescription } from '@alexnet-mp/coordinator';
import { describeTwoWorkers, runTwoWorkers, type TwoWorkerResult } from './two-workers.js';
import { runTorchPeer, torchPython } from './peer/torch-peer.js';
import { simdCeiling, type SimdCeiling } from './simd-ceiling.js';
import { convShare, type ConvShare } from './conv-share.js';

const peerChoices = ['tfjs', 'tfjs-wasm', 'tfjs-webgpu', 'torch', 'none'] as const;
type PeerName = Exclude<(typeof peerChoices)[number], 'tfjs' | 'none'>;
const peerTitle: Record<PeerName, string> = { 'tfjs-wasm': 'TensorFlow.js wasm', 'tfjs-webgpu': 'TensorFlow.js WebGPU', torch: 'PyTorch' };

const argv = await benchArgs(yargs(hideBin(process.argv)), { batch: 'count', iters: 'count', warmup: 'count0', 'peer-iters': 'count', 'peer-warmup': 'count0', 'peer-threads': 'count' })
  .usage('npm run bench -- [options]\n\nTimes one training step of alexnet-mp and of its peers (TensorFlow.js, PyTorch) in one run.\n\nnpm run bench -- --distributed [options]: the two-worker run next to the one-process trainer instead (its options: npm run bench -- --distributed --help).')
  .option('preset', { choices: presetNames, default: 'cifar' as const, describe: 'model preset' })
  .option('backend', { choices: backendChoices, default: 'webasm' as RequestedBackend, describe: 'gpu.js mode (auto: webgpu if an adapter answers, else webasm)' })
  .option('batch', { type: 'number', default: 64, describe: 'images per step' })
  .option('iters', { type: 'number', default: 5, describe: 'timed steps (median reported), for every part' })
  .option('warmup', { type: 'number', default: 1, describe: 'untimed steps first (kernels compile on the first)' })
  .option('peer', {
    type: 'string',
    array: true,
    choices: peerChoices,
    describe: 'the peers measured in the same run (repeatable). tfjs: TensorFlow.js on wasm, or on WebGPU when alexnet-mp runs on webgpu; torch: PyTorch (python3, or $ALEXNET_PYTHON). Default: tfjs, plus torch on webgpu',
  })
  .option('two-workers', { type: 'boolean', describe: "also time alexnet-mp's two-worker run (default: on webgpu; --no-two-workers to skip)" })
  .option('peer-iters', { type: 'number', describe: 'timed steps of each peer (default: --iters)' })
  .option('peer-warmup', { type: 'number', describe: 'untimed steps of each peer first (default: --warmup)' })
  .option('peer-threads', { type: 'number', describe: "threads for the tfjs wasm backend (default: tfjs's own default)" })
  .option('torch-device', { choices: ['auto', 'cuda', 'cpu'] as const, default: 'auto' as const, describe: 'where the PyTorch peer runs (auto: cuda if torch sees a GPU)' })
  .option('json', { type: 'boolean', default: false, describe: 'one JSON object' })
  .option('profile', { type: 'boolean', default: false, describe: 'time each kernel, upload and read-back of one more step, one at a time (on webgpu: GPU time)' })
  .option('conv-share', { type: 'boolean', default: true, describe: "on webasm: time the conv layers alone against the machine's measured wasm SIMD ceiling (--no-conv-share to skip)" })
  .strict()
  .version(false)
  .help()
  .parseAsync();

const spec = getPreset(argv.preset);
const B = argv.batch;
const log = (s: string) => {
  if (!argv.json) process.stdout.write(s + '\n');
};
const userErrors = new Set(['ArrayTooLargeError', 'BackendFallbackError', 'UserError', 'DataError']);
/** A part's failure in one line (the stack too, on stderr, where it is not one of the errors that say what to change). */
function failure(part: string, e: unknown): string {
  const line = e instanceof Error ? `${userErrors.has(e.name) ? '' : `${e.name}: `}${e.message.split('\n')[0]}` : String(e);
  if (!(e instanceof Error && userErrors.has(e.name))) process.stderr.write(`${part}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  log(`${part}: failed: ${line}`);
  return line;
}
const failures: string[] = [];

/** The threads of this process (Linux: /proc/self/task), or null. */
function processThreads(): number | null {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return null;
  }
}

// ---- alexnet-mp, one process
const rng = new Rng(1);
const S = spec.inputSize;
const images = Float32Array.from({ length: 3 * B * S * S }, () => rng.normal());
const labels = Float32Array.from({ length: B }, () => rng.int(spec.classes));

// no WebGPU adapter for --backend webgpu (NoWebGPUError) ends the run here: nothing to compare
const trainer = await GroupedTrainer.create({ spec, backend: argv.backend, batch: B, seed: 1, hyper: paperSgd });
const mode: BackendMode = trainer.device.mode;
log(`alexnet-mp: preset ${spec.name}, batch ${B}, gpu.js mode ${mode}, ${os.cpus().length} CPU cores; ${mallocDescription()} (both alexnet-mp and the peer)`);

interface OneProcess {
  imagesPerSec: number;
  medianStepMs: number;
  gflops: number;
  cpuSecondsPerStep: number;
  gcPausesPerStep: number;
  gcMsPerStep: number;
  kernelModes: string[];
  launchesPerStep: number;
  /** Threads of this process after the timed steps (null where /proc is not there), and its resident memory. */
  threads: number | null;
  rssMiB: number;
}
let one: OneProcess | null = null;
let oneError: string | null = null;
try {
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
  /** webgpu: the bind groups and buffers the last timed step made. */
  let made: { bindGroups: number; buffers: number; submits: number } | null = null;
  for (let i = 0; i < argv.iters; i++) {
    // the last timed step counts its kernel calls (one call per launch), and on webgpu what it made on the device
    const last = i === argv.iters - 1;
    if (last) startKernelProfile();
    const t0 = performance.now();
    if (last && mode === 'webgpu') made = await countDeviceObjects(() => trainer.trainStep({ images, labels }));
    else await trainer.trainStep({ images, labels });
    times.push(performance.now() - t0);
    log(`  step ${i + 1}/${argv.iters}: ${times[i]!.toFixed(0)} ms`);
  }
  const cpu = process.cpuUsage(cpu0);
  gcObserver.disconnect();
  const kernels = kernelProfile();
  stopKernelProfile();
  const stepMs = median(times);
  one = {
    imagesPerSec: (B / stepMs) * 1000,
    medianStepMs: stepMs,
    // forward multiply-adds x 2 flops x 3 (forward, input gradient, weight gradient)
    gflops: (forwardMacs(spec) * 2 * 3 * B) / (stepMs / 1000) / 1e9,
    cpuSecondsPerStep: (cpu.user + cpu.system) / 1e6 / argv.iters,
    gcPausesPerStep: gcPauses / argv.iters,
    gcMsPerStep: gcMs / argv.iters,
    kernelModes: trainer.executedModes(),
    launchesPerStep: launchCount(kernels),
    threads: processThreads(),
    rssMiB: process.memoryUsage().rss / 2 ** 20,
  };
  log(`alexnet-mp: ${one.imagesPerSec.toFixed(1)} images/s (median step ${stepMs.toFixed(0)} ms), ${one.gflops.toFixed(2)} GFLOP/s, kernels ran on: ${one.kernelModes.join(', ')}`);
  log(`alexnet-mp: ${one.cpuSecondsPerStep.toFixed(2)} CPU seconds a step (all threads); main-thread GC ${one.gcPausesPerStep.toFixed(1)} pauses, ${one.gcMsPerStep.toFixed(0)} ms a step`);
  log(`alexnet-mp: ${one.launchesPerStep} kernel launches a step (gpu.js kernel calls of both towers, last timed step)${made ? `; it made ${made.bindGroups} bind groups and ${made.buffers} buffers on the GPU and submitted ${made.submits} command buffers (ALEXNET_WEBGPU_BATCH=${webgpuBatchFromEnv()} dispatches a submit at most)` : ''}`);
  log(`alexnet-mp: ${one.threads ?? 'an unknown number of'} threads in the process, ${one.rssMiB.toFixed(0)} MiB resident, after the timed steps`);
  if (argv.profile) {
    // one more step, apart from the timed ones: each operation alone, on webgpu with the GPU queue drained before and after (kernel-profile.ts)
    startKernelProfile({ exclusive: true });
    const t0 = performance.now();
    await trainer.trainStep({ images, labels });
    const profiledMs = performance.now() - t0;
    const rows = kernelProfile();
    stopKernelProfile();
    const total = (kind: string) => rows.filter((r) => r.kind === kind).reduce((a, r) => ({ ms: a.ms + r.ms, calls: a.calls + r.calls }), { ms: 0, calls: 0 });
    const [k, up, rb, q] = [total('kernel'), total('upload'), total('read-back'), total('queue')];
    const how = mode === 'webgpu' ? 'alone, the GPU queue drained before and after: GPU time' : 'alone';
    log(`profile of one more step, each operation timed ${how} (so the step is slower than the timed ones): ${profiledMs.toFixed(0)} ms`);
    for (const r of rows.filter((r) => r.kind !== 'queue').slice(0, 25)) log(`    ${r.name.padEnd(28)} ${r.ms.toFixed(1).padStart(7)} ms  (${r.calls} ${r.kind === 'kernel' ? 'calls' : r.kind + 's'})`);
    const share = (ms: number) => `${((100 * ms) / profiledMs).toFixed(0)}%`;
    const queue = q.calls > 0 ? `, waits for an empty queue ${q.ms.toFixed(0)} ms (${share(q.ms)}, ${q.calls})` : '';
    log(`    kernels ${k.ms.toFixed(0)} ms (${share(k.ms)}, ${k.calls} launches), uploads ${up.ms.toFixed(0)} ms (${share(up.ms)}, ${up.calls}), read-backs ${rb.ms.toFixed(0)} ms (${share(rb.ms)}, ${rb.calls})${queue}, the rest ${(profiledMs - k.ms - up.ms - rb.ms - q.ms).toFixed(0)} ms (host work between them)`);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
    const kernelRows = rows.filter((r) => r.kind === 'kernel');
    const resultBytes = kernelRows.reduce((a, r) => a + r.bytes, 0);
    const reusedBytes = kernelRows.reduce((a, r) => a + (r.reused ? r.bytes : 0), 0);
    log(`    kernel results of that step: ${mib(resultBytes)} MiB, ${mib(reusedBytes)} MiB of them into reused buffers (KernelOptions.reuseOutput)`);
  }
} catch (e) {
  oneError = failure('alexnet-mp, one process', e);
  failures.push('one process');
}

// ---- the convolutions against the wasm SIMD ceiling (webasm)
let conv: (ConvShare & { ceiling: SimdCeiling }) | null = null;
if (mode === 'webasm' && argv['conv-share'] && one !== null) {
  try {
    const ceiling = await simdCeiling();
    log(`wasm SIMD ceiling (measured): f32x4 multiply-adds at ${ceiling.perThread.toFixed(1)} GFLOP/s on one thread, ${ceiling.allThreads.toFixed(1)} on ${ceiling.threads} at once`);
    conv = { ...(await convShare(trainer.device, spec, B, ceiling)), ceiling };
    log(`convolutions (conv1-conv${spec.layers.filter((l) => l.type === 'conv').length} of one tower, forward and backward, alone): ${conv.gflops.toFixed(1)} GFLOP/s in ${conv.ms.toFixed(0)} ms, ${(conv.share * 100).toFixed(0)}% of the ${ceiling.threads}-thread ceiling`);
  } catch (e) {
    failure('convolutions against the SIMD ceiling', e);
    failures.push('conv share');
  }
}
trainer.destroy();

// ---- alexnet-mp, two workers
let two: TwoWorkerResult | null = null;
let twoError: string | null = null;
if (argv['two-workers'] ?? mode === 'webgpu') {
  log(`two workers: two alexnet worker processes on loopback, gpu.js mode ${mode}, same batch and update ...`);
  try {
    two = await runTwoWorkers({ spec, backend: mode, batch: B, warmup: argv.warmup, iters: argv.iters, hyper: paperSgd, log });
    log(describeTwoWorkers(two));
  } catch (e) {
    twoError = failure('alexnet-mp, two workers', e);
    failures.push('two workers');
  }
}

// ---- peers
const asked = argv.peer ?? (mode === 'webgpu' ? ['tfjs', 'torch'] : ['tfjs']);
const peerNames = [...new Set(asked.filter((p) => p !== 'none').map((p) => (p === 'tfjs' ? (mode === 'webgpu' ? 'tfjs-webgpu' : 'tfjs-wasm') : p)))] as PeerName[];

interface PeerRow {
  name: PeerName;
  title: string;
  ran: boolean;
  failed?: boolean;
  /** Why it did not run (skipped) or what failed. */
  why?: string;
  description?: string;
  imagesPerSec?: number;
  medianStepMs?: number;
  firstLoss?: number;
  lastLoss?: number;
  fallbacks?: string[];
  threads?: number;
  /** alexnet-mp one process / peer, and two workers / peer. */
  ratio?: number | null;
  ratioTwoWorkers?: number | null;
}
const peers: PeerRow[] = [];
const peerSteps = { warmup: argv['peer-warmup'] ?? argv.warmup, iters: argv['peer-iters'] ?? argv.iters };
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

for (const name of peerNames) {
  const row: PeerRow = { name, title: peerTitle[name], ran: false };
  peers.push(row);
  log(`peer: ${row.title}, same model, batch and update ...`);
  try {
    if (name === 'torch') {
      const outcome = await runTorchPeer({ spec, batch: B, ...peerSteps, device: argv['torch-device'], log: (l) => log(`  torch: ${l}`) });
      if (!outcome.ran) {
        row.why = outcome.why;
        log(`peer: PyTorch skipped: ${outcome.why}`);
        continue;
      }
      Object.assign(row, { ran: true, ...pick(outcome.result) });
    } else if (name === 'tfjs-webgpu') {
      // loaded here only: its backend's package registers itself on import, once navigator.gpu exists
      const { runTfjsWebGPUPeer } = await import('./peer/tfjs-webgpu.js');
      Object.assign(row, { ran: true, ...pick(await runTfjsWebGPUPeer({ spec, batch: B, ...peerSteps })) });
    } else {
      const { runTfjsPeer } = await import('./peer/tfjs-alexnet.js');
      const r = await runTfjsPeer({ spec, batch: B, ...peerSteps, threads: argv['peer-threads'] });
      Object.assign(row, { ran: true, ...pick(r), fallbacks: r.fallbacks, threads: r.threads });
    }
  } catch (e) {
    row.why = failure(`peer ${row.title}`, e);
    row.failed = true;
    failures.push(row.title);
    continue;
  }
  row.ratio = one ? one.imagesPerSec / row.imagesPerSec! : null;
  row.ratioTwoWorkers = two ? two.imagesPerSec / row.imagesPerSec! : null;
  log(`peer: ${fmt(row.imagesPerSec!)} images/s (median step ${row.medianStepMs!.toFixed(0)} ms; loss ${row.firstLoss!.toFixed(3)} at the first step, ${row.lastLoss!.toFixed(3)} at the last): ${row.description}`);
  if (row.fallbacks && row.fallbacks.length > 0) log(`peer: kernels missing from tfjs-backend-wasm, registered as plain JavaScript fallbacks: ${row.fallbacks.join(', ')}`);
  const ratios = [row.ratio !== null ? `${row.ratio.toFixed(2)}${two ? ' (one process)' : ''}` : null, row.ratioTwoWorkers !== null ? `${row.ratioTwoWorkers.toFixed(2)} (two workers)` : null].filter(Boolean);
  if (ratios.length > 0) log(`ratio (alexnet-mp / ${row.title}): ${ratios.join(', ')}`);
}

function pick(r: { imagesPerSec: number; medianStepMs: number; firstLoss: number; lastLoss: number; description: string }) {
  return { imagesPerSec: r.imagesPerSec, medianStepMs: r.medianStepMs, firstLoss: r.firstLoss, lastLoss: r.lastLoss, description: r.description };
}

// ---- summary: every part's images/s and each ratio, in one place
if (two !== null || twoError !== null || peers.length > 1) {
  const rows: [string, string][] = [
    ['alexnet-mp, one process', one ? `${fmt(one.imagesPerSec)} images/s (${one.launchesPerStep} launches a step)` : `failed: ${oneError}`],
  ];
  if (two !== null || twoError !== null) rows.push(['alexnet-mp, two workers', two ? `${fmt(two.imagesPerSec)} images/s` : `failed: ${twoError}`]);
  for (const p of peers) {
    if (!p.ran) {
      rows.push([p.title, `${p.failed ? 'failed' : 'not run'}: ${p.why}`]);
      continue;
    }
    const r = [p.ratio != null ? `one process ${p.ratio.toFixed(2)}x` : null, p.ratioTwoWorkers != null ? `two workers ${p.ratioTwoWorkers.toFixed(2)}x` : null].filter(Boolean);
    rows.push([p.title, `${fmt(p.imagesPerSec!)} images/s${r.length > 0 ? `; alexnet-mp / ${p.title}: ${r.join(', ')}` : ''}`]);
  }
  const peerNote = peerSteps.iters !== argv.iters || peerSteps.warmup !== argv.warmup ? ` (peers: ${peerSteps.iters} after ${peerSteps.warmup})` : '';
  log(`summary: preset ${spec.name}, batch ${B}, gpu.js mode ${mode}, median of ${argv.iters} steps after ${argv.warmup} warm-up${peerNote}`);
  for (const [k, v] of rows) log(`  ${k.padEnd(26)} ${v}`);
}

if (argv.json) {
  const first = peers.find((p) => p.ran && p.name !== 'torch') ?? peers.find((p) => p.ran) ?? null;
  process.stdout.write(
    JSON.stringify({
      preset: spec.name,
      backend: mode,
      batch: B,
      imagesPerSec: one?.imagesPerSec ?? null,
      medianStepMs: one?.medianStepMs ?? null,
      gflops: one?.gflops ?? null,
      cpuSecondsPerStep: one?.cpuSecondsPerStep ?? null,
      gcPausesPerStep: one?.gcPausesPerStep ?? null,
      gcMsPerStep: one?.gcMsPerStep ?? null,
      kernelModes: one?.kernelModes ?? null,
      launchesPerStep: one?.launchesPerStep ?? null,
      threads: one?.threads ?? null,
      rssMiB: one?.rssMiB ?? null,
      oneProcessError: oneError,
      convolutions: conv,
      twoWorkers: two,
      twoWorkersError: twoError,
      // the first TensorFlow.js peer that ran, as before several peers were measured
      peer: first?.description ?? null,
      peerThreads: first?.threads ?? null,
      peerFallbacks: first?.fallbacks ?? null,
      peerImagesPerSec: first?.imagesPerSec ?? null,
      ratio: first?.ratio ?? null,
      peers,
      torchPython: peerNames.includes('torch') ? torchPython() : null,
      cpus: os.cpus().length,
      malloc: mallocDescription(),
    }) + '\n',
  );
}
// Dawn's instance (webgpu) keeps the event loop alive
process.exit(failures.length > 0 ? 1 : 0);
