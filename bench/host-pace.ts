// Does a run's step time follow the machine, or the age of its worker processes? Every --every
// seconds this samples the host's memory-copy bandwidth (a fresh 2 x 64 MiB copy, best of 8: it
// drops when other tenants of the host load its memory) and the median time of the steps the run
// logged since the last sample (RUN_DIR/metrics.jsonl; intervals with an evaluation or under 5 steps
// are left out), prints one line per sample, and at the end the correlation of the two.
//   node --import tsx bench/host-pace.ts training/cifar10 [--minutes 60] [--every 60]
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { median } from '@alexnet-mp/core';
import { benchArgs } from './cli-args.js';

const argv = await benchArgs(yargs(hideBin(process.argv)), { minutes: 'ms', every: 'ms' })
  .usage('node --import tsx bench/host-pace.ts RUN_DIR [options]\n\nA run\'s step time against the host\'s memory bandwidth, sampled while it trains.')
  .command('$0 <run>', false)
  .positional('run', { type: 'string', demandOption: true, describe: 'the run folder (its metrics.jsonl)' })
  .option('minutes', { type: 'number', default: 60, describe: 'how long to sample' })
  .option('every', { type: 'number', default: 60, describe: 'seconds between samples' })
  .strict()
  .help()
  .parseAsync();
const runDir = argv.run as string;
const metrics = path.join(runDir, 'metrics.jsonl');
if (!fs.existsSync(metrics)) {
  console.error(`host-pace.ts: ${metrics}: no such file (is ${runDir} a run folder that is training?)`);
  process.exit(2);
}
const { minutes, every } = argv;
if (!(minutes > 0) || !(every > 0)) {
  console.error('host-pace.ts: --minutes and --every take a number above 0');
  process.exit(2);
}

const src = new Float32Array(16 << 20);
const dst = new Float32Array(16 << 20);
src.fill(1);
function bandwidthGBs() {
  let best = Infinity;
  for (let i = 0; i < 8; i++) {
    const t = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - t);
  }
  // bytes read + written
  return (2 * src.byteLength) / 2 ** 30 / (best / 1000);
}

let offset = fs.statSync(metrics).size;
interface Event {
  event: string;
  ms?: number;
}
function newEvents(): Event[] {
  const size = fs.statSync(metrics).size;
  if (size < offset) offset = 0;
  const fd = fs.openSync(metrics, 'r');
  const buf = Buffer.alloc(size - offset);
  fs.readSync(fd, buf, 0, buf.length, offset);
  fs.closeSync(fd);
  const text = buf.toString('utf8');
  const end = text.lastIndexOf('\n') + 1;
  offset += Buffer.byteLength(text.slice(0, end));
  return text
    .slice(0, end)
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Event];
      } catch {
        return [];
      }
    });
}

const samples: [number, number][] = [];
const t0 = Date.now();
console.log(`sampling ${runDir} every ${every} s for ${minutes} min: time, steps, median step (s), memory-copy bandwidth (GiB/s)`);
while (Date.now() - t0 < minutes * 60_000) {
  await new Promise((r) => setTimeout(r, every * 1000));
  const ev = newEvents();
  const steps = ev.filter((e) => e.event === 'step');
  const gbs = bandwidthGBs();
  const skip = ev.some((e) => e.event === 'eval' || e.event === 'run') || steps.length < 5;
  const ms = steps.length ? median(steps.map((s) => s.ms!)) : NaN;
  const when = new Date().toISOString().slice(11, 19);
  console.log(`${when}  steps ${String(steps.length).padStart(3)}  ${Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '  - '} s  ${gbs.toFixed(1)} GiB/s${skip ? '  (left out)' : ''}`);
  if (!skip) samples.push([ms / 1000, gbs]);
}
if (samples.length < 3) {
  console.log(`${samples.length} usable samples: too few for a correlation`);
} else {
  const n = samples.length;
  const mx = samples.reduce((s, [x]) => s + x, 0) / n;
  const my = samples.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (const [x, y] of samples) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
    syy += (y - my) ** 2;
  }
  console.log(`${n} samples: median step ${median(samples.map(([x]) => x)).toFixed(2)} s (${Math.min(...samples.map(([x]) => x)).toFixed(2)}-${Math.max(...samples.map(([x]) => x)).toFixed(2)}), bandwidth ${median(samples.map(([, y]) => y)).toFixed(1)} GiB/s (${Math.min(...samples.map(([, y]) => y)).toFixed(1)}-${Math.max(...samples.map(([, y]) => y)).toFixed(1)}); correlation of step time and bandwidth ${(sxy / Math.sqrt(sxx * syy)).toFixed(2)}`);
}
