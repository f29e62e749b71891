/**
 * The GEMMs of one conv layer alone on webasm: `node --import tsx bench/gemm.ts [--preset cifar]
 * [--batch 64] [--layer conv2]` times the layer's forward GEMM, its weight gradient and its input
 * gradient (one tower, the shapes the training step runs), each the median of 5 after a warm-up, and
 * prints GFLOP/s of wall time and of CPU time (all threads).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import { Device, getPreset, median, planModel, presetNames } from '@alexnet-mp/core';
import { Gemm, gemmShape } from '../packages/core/src/kernels/gemm.js';
import { filled } from './conv-share.js';

const argv = await benchArgs(yargs(hideBin(process.argv)), { batch: 'count' })
  .usage('node --import tsx bench/gemm.ts [options]\n\nTimes one conv layer\'s three GEMMs on webasm.')
  .option('preset', { choices: presetNames, default: 'cifar' as const })
  .option('batch', { type: 'number', default: 64 })
  .option('layer', { type: 'string', default: 'conv2', describe: 'a conv layer of the preset' })
  .strict()
  .version(false)
  .help()
  .parseAsync();

const plan = planModel(getPreset(argv.preset)).find((p) => p.layer.name === argv.layer);
if (!plan || plan.layer.type !== 'conv') {
  process.stderr.write(`bench/gemm.ts: ${argv.preset} has no conv layer ${argv.layer}\n`);
  process.exit(2);
}
const l = plan.layer;
const O = l.filtersPerTower;
const K = plan.inShape.c * l.size * l.size;
const P = argv.batch * plan.outShape.h * plan.outShape.w;
const dev = await Device.create('webasm', { onFallback: 'throw' });
process.stdout.write(`${argv.preset} ${argv.layer}, batch ${argv.batch}, one tower, gpu.js webasm\n`);
for (const [name, M, N, KK, ta, tb] of [
  ['forward', O, P, K, false, false],
  ['weight gradient', O, K, P, false, true],
  ['input gradient', K, P, O, true, false],
] as const) {
  const g = new Gemm(dev, name, gemmShape(M, N, KK, ta, tb));
  const a = filled(M * KK, 1);
  const b = filled(KK * N, 2);
  await g.run(a, b);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await g.run(a, b);
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const flops = 2 * M * N * KK;
  const w = median(wall);
  const c = median(cpu);
  process.stdout.write(`  ${name.padEnd(16)} ${M}x${N}x${KK}: ${w.toFixed(0)} ms, ${(flops / w / 1e6).toFixed(1)} GFLOP/s; ${c.toFixed(0)} CPU ms, ${(flops / c / 1e6).toFixed(1)} GFLOP per CPU second\n`);
}
process.exit(0);
