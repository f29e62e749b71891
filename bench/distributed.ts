/**
 * `node --import tsx bench/distributed.ts --preset cifar --batch 32 [--backend webasm] [--iters 5] [--warmup 1] [--micro-batches 1 auto] [--worker-threads N] [--json]`
 *
 * The two-worker run on this machine next to the one-process grouped trainer:
 * starts two `alexnet worker` processes on free loopback ports, drives them
 * with the coordinator (in this process) for --warmup + --iters steps of
 * synthetic data, stops them, then times the one-process GroupedTrainer on
 * the same batches. With several --micro-batches values, one two-worker run each
 * (N micro-batches a step, or auto: the coordinator's choice, made in untimed steps
 * first). On webasm each worker gets half the cores (--worker-threads N to choose), as launch gives them. Reports images/s of both (median step), and for the
 * two-worker run where each worker's step time went: computing, waiting on
 * the exchange with its peer (sending until acknowledged, or waiting for
 * the peer's tensor), and the update; plus the bytes that crossed per step.
 * `--json` prints one JSON object per line (kind: distributed, one-process, comparison).
 */
import os from 'node:os';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import { GroupedTrainer, backendChoices, getPreset, median, presetNames, type RequestedBackend, type SgdHyper } from '@alexnet-mp/core';
import { inputNormalisation, normaliseImages } from '@alexnet-mp/worker';
import { SyntheticSource, checkThreads, mallocDescription, parseMicroBatches } from '@alexnet-mp/coordinator';
import { describeTwoWorkers, runTwoWorkers, type TwoWorkerResult } from './two-workers.js';

const argv = await benchArgs(yargs(hideBin(process.argv)), { batch: 'count', iters: 'count', warmup: 'count0', 'worker-threads': 'count' })
  .usage('npm run bench -- --distributed [options]\n\nImages/s of the two-worker run (two processes, gRPC on loopback) next to the one-process trainer.')
  .option('preset', { choices: presetNames, default: 'cifar' as const, describe: 'model preset' })
  .option('backend', { choices: backendChoices, default: 'webasm' as RequestedBackend, describe: 'gpu.js mode of both workers and the one-process trainer' })
  .option('batch', { type: 'number', default: 32, describe: 'images per step' })
  .option('iters', { type: 'number', default: 5, describe: 'timed steps (median reported)' })
  .option('warmup', { type: 'number', default: 1, describe: 'untimed steps first (kernels compile on the first)' })
  .option('micro-batches', { type: 'string', array: true, default: ['1'], describe: 'micro-batches a step of the two-worker run: N, or auto (the coordinator chooses); several values: one run each' })
  .option('one-process', { type: 'boolean', default: true, describe: 'also time the one-process trainer (--no-one-process to skip)' })
  .option('worker-threads', { type: 'number', describe: "webasm: each worker's kernel threads, 1..1024 (default: half the cores, as launch gives them)" })
  .option('pin-cpus', { type: 'boolean', default: true, describe: 'CPU workers on cores of their own, as launch gives them (Linux); --no-pin-cpus leaves them to the scheduler' })
  .option('queue-steps', { type: 'boolean', default: true, describe: 'each step sent while the one before runs, as training does; --no-queue-steps: each waits for the replies of the one before' })
  .check((a) => {
    checkThreads(a['worker-threads'], 'worker-threads');
    return true;
  })
  .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
  .strict()
  .help()
  .parseAsync();

const spec = getPreset(argv.preset);
const B = argv.batch;
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
const source = new SyntheticSource(spec, 1);
const steps = argv.warmup + argv.iters;
const log = (s: string) => {
  if (!argv.json) process.stdout.write(s + '\n');
};
const emit = (o: object) => {
  if (argv.json) process.stdout.write(JSON.stringify(o) + '\n');
};

log(`preset ${spec.name}, batch ${B}, backend ${argv.backend}, ${os.cpus().length} CPU cores; ${argv.warmup} warm-up + ${argv.iters} timed steps; ${mallocDescription()} (workers and the one-process run)`);

// ---- two workers, one coordinator (bench/two-workers.ts), once per --micro-batches value
const counts = argv['micro-batches'].map((v) => parseMicroBatches(v, B));
const runs: TwoWorkerResult[] = [];
for (const microBatches of counts) {
  const distributed = await runTwoWorkers({ spec, backend: argv.backend, batch: B, warmup: argv.warmup, iters: argv.iters, hyper, log, microBatches, pinCpus: argv['pin-cpus'], queueSteps: argv['queue-steps'], ...(argv['worker-threads'] === undefined ? {} : { threads: argv['worker-threads'] }) });
  log(`${microBatches === 'auto' ? '(auto) ' : ''}${describeTwoWorkers(distributed)}`);
  emit({ ...distributed, microBatchesAsked: microBatches });
  runs.push(distributed);
}

// ---- one process, same batches
if (argv['one-process']) {
  const trainer = await GroupedTrainer.create({ spec, backend: argv.backend, batch: B, seed: 1, hyper, fallback: { onFallback: 'throw' } });
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const b = await source.batch(s, B);
    const batch = { images: normaliseImages(b.images, inputNormalisation(spec)), labels: Float32Array.from(b.labels) };
    const t0 = performance.now();
    await trainer.trainStep(batch);
    const ms = performance.now() - t0;
    if (s >= argv.warmup) times.push(ms);
    log(`  one process, step ${s + 1}/${steps}${s < argv.warmup ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms`);
  }
  trainer.destroy();
  const oneMs = median(times);
  const one = { kind: 'one-process', preset: spec.name, backend: argv.backend, batch: B, imagesPerSec: (B / oneMs) * 1000, medianStepMs: oneMs };
  log(`one process: ${one.imagesPerSec.toFixed(1)} images/s (median step ${oneMs.toFixed(0)} ms)`);
  emit(one);
  for (const [i, d] of runs.entries()) {
    const ratio = d.imagesPerSec / one.imagesPerSec;
    log(`two workers (--micro-batches ${counts[i]}: ${d.microBatches}) / one process: ${ratio.toFixed(2)}x`);
    emit({ kind: 'comparison', preset: spec.name, batch: B, microBatches: d.microBatches, ratio });
  }
}
process.exit(0);
