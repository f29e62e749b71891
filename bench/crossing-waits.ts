/**
 * `node --import tsx bench/crossing-waits.ts [--preset tiny] [--batch 64] [--iters 150] [--micro-batches 1] [--keep DIR]`
 *
 * Where the two workers' exchange wait goes: runs the two-worker bench (bench/two-workers.ts: two `alexnet worker`
 * processes on loopback, the coordinator in this process, synthetic data) with `worker --trace-crossings`, then
 * lays the two traces side by side (one host, one clock; packages/worker/src/crossing-trace.ts) and prints, per
 * worker and crossing, the milliseconds a step it waited: before the peer sent the tensor it waited for (the peer
 * not there yet: computing more, started later, paused) and after (the tensor travelling to it and being read),
 * and how much of the waiting the peer spent in its garbage collector. `--keep DIR` keeps the two trace files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import { backendChoices, getPreset, makeDir, presetNames, type RequestedBackend, type SgdHyper } from '@alexnet-mp/core';
import { crossingWaits, readCrossingTrace, type TowerWaits } from '@alexnet-mp/worker';
import { parseMicroBatches } from '@alexnet-mp/coordinator';
import { describeTwoWorkers, runTwoWorkers } from './two-workers.js';

const argv = await benchArgs(yargs(hideBin(process.argv)), { batch: 'count', iters: 'count', warmup: 'count0' })
  .usage('node --import tsx bench/crossing-waits.ts [options]\n\nThe two-worker run with each crossing timed: where each worker\'s exchange wait goes.')
  .option('preset', { choices: presetNames, default: 'tiny' as const, describe: 'model preset' })
  .option('backend', { choices: backendChoices, default: 'webasm' as RequestedBackend, describe: 'gpu.js mode of both workers' })
  .option('batch', { type: 'number', default: 64, describe: 'images per step' })
  .option('iters', { type: 'number', default: 150, describe: 'timed steps' })
  .option('warmup', { type: 'number', default: 1, describe: 'untimed steps first (kernels compile on the first)' })
  .option('micro-batches', { type: 'string', default: '1', describe: 'micro-batches a step: N, or auto' })
  .option('keep', { type: 'string', describe: 'keep the two trace files in this folder (default: a temporary folder, removed)' })
  .strict()
  .help()
  .parseAsync();

const spec = getPreset(argv.preset);
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
const dir = argv.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-crossing-waits-'));
makeDir(dir, 'the --keep folder');
const prefix = path.join(dir, `crossings-${spec.name}-b${argv.batch}`);
try {
  const log = (s: string) => process.stdout.write(`${s}\n`);
  log(`preset ${spec.name}, batch ${argv.batch}, backend ${argv.backend}, ${os.availableParallelism()} CPU cores; ${argv.warmup} warm-up + ${argv.iters} traced steps`);
  const run = await runTwoWorkers({ spec, backend: argv.backend, batch: argv.batch, warmup: argv.warmup, iters: argv.iters, hyper, microBatches: parseMicroBatches(argv['micro-batches'], argv.batch), traceCrossings: prefix });
  log(describeTwoWorkers(run));
  const waits = crossingWaits([readCrossingTrace(`${prefix}.tower0.jsonl`), readCrossingTrace(`${prefix}.tower1.jsonl`)], run.firstTimedStep);
  for (const w of waits) log(describeWaits(w));
  if (argv.keep) log(`traces: ${prefix}.tower0.jsonl, ${prefix}.tower1.jsonl`);
} finally {
  if (!argv.keep) fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);

function describeWaits(w: TowerWaits): string {
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  // of the mean step: a mean wait a step over the mean step is its share of all the steps' time, as the line above counts it
  const pct = (x: number) => `${((100 * x) / w.meanStepMs).toFixed(0)}%`;
  const rows = w.crossings.map((c) => {
    const name = `    ${c.crossing.padEnd(15)} `;
    if (c.kind === 'acks') return `${name}waited ${ms(c.waitedMs)} for the peer's acknowledgements`;
    if (c.kind === 'sends') return `${name}sends only: waited ${ms(c.waitedMs)} for its own tensors to leave`;
    return `${name}waited ${ms(c.waitedMs)}: ${ms(c.beforePeerSentMs)} before the peer sent, ${ms(c.afterPeerSentMs)} after; the peer in its garbage collector ${ms(c.peerGcMs)}`;
  });
  return [
    `tower ${w.tower}: ${w.steps} steps, median ${w.medianStepMs.toFixed(1)} ms, mean ${w.meanStepMs.toFixed(1)} ms; waited ${ms(w.waitedMs)} a step (${pct(w.waitedMs)} of the mean step): ` +
      `${ms(w.beforePeerSentMs)} before the peer sent (${pct(w.beforePeerSentMs)}), ${ms(w.afterPeerSentMs)} after (${pct(w.afterPeerSentMs)}), ${ms(w.ownSendsMs)} on its own sends and the acknowledgements (${pct(w.ownSendsMs)}); ` +
      `the peer in its garbage collector ${ms(w.peerGcMs)} of it; its own garbage collector ${ms(w.gcMs)} a step`,
    ...rows,
  ].join('\n');
}
