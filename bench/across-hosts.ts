/**
 * The two-worker run across three hosts with latency between them, next to the same run on loopback:
 * `node --import tsx bench/across-hosts.ts [--preset cifar] [--batch 64] [--steps 8] [--delay 10]
 * [--micro-batches 1 2] [--no-queue-steps]` (as root: it makes network namespaces, bench/netns.ts). For each --micro-batches
 * value, `alexnet launch` on loopback, then the coordinator and the two workers each in its own network
 * namespace, `--delay` ms added each way (a 2 x delay round trip); it prints the images/s of both (median
 * step after the first, from the run's metrics) and their ratio. Synthetic data, webasm; the workers in the
 * namespaces get the threads, cores, Node.js flags and malloc settings launch gives them on loopback.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import { median, presetNames } from '@alexnet-mp/core';
import { colocatedThreads, cpuWorkerArgs, planCpus, readRunEvents, stepTimesMs, withMallocTuning, workerNodeFlags } from '@alexnet-mp/coordinator';
import { addNetem, startRelay, threeHosts } from './netns.js';
// the process runner the tests use (test/helpers.ts): output kept, lines awaited, `ip netns exec` when asked
import { alexnet, type Proc } from '../test/helpers.js';

const argv = await benchArgs(yargs(hideBin(process.argv)), { batch: 'count', steps: 2, delay: 'ms' })
  .usage('node --import tsx bench/across-hosts.ts [options]\n\nThe two-worker run across three network namespaces with latency, next to loopback (needs root).')
  .option('preset', { choices: presetNames, default: 'cifar' as const })
  .option('batch', { type: 'number', default: 64 })
  .option('steps', { type: 'number', default: 8, describe: 'steps of each run (the first is not timed)' })
  .option('delay', { type: 'number', default: 10, describe: 'ms added each way between the hosts' })
  .option('micro-batches', { type: 'string', array: true, default: ['1'], describe: 'one pair of runs for each value' })
  .option('queue-steps', { type: 'boolean', default: true, describe: 'each step sent while the one before runs (--no-queue-steps: each waits for the replies of the one before), in both runs' })
  .strict()
  .version(false)
  .help()
  .parseAsync();

if (process.getuid?.() !== 0) {
  process.stderr.write('bench/across-hosts.ts makes network namespaces: run it as root\n');
  process.exit(2);
}

const PORT = 50051;
const RELAY_PORT = 50052;
const TOKEN = ['--token', `across-hosts-bench-${process.pid}-0123456789abcdef`];
const cleanups: (() => void)[] = [];
const cleanup = () => {
  for (const f of cleanups.splice(0).reverse()) f();
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** `alexnet ARGS` (in namespace `ns`, with Node.js flags `nodeArgs`), killed when the benchmark ends. */
function alexnetIn(args: string[], ns?: string, nodeArgs: readonly string[] = []): Proc {
  // glibc's malloc settings, as launch gives its children (malloc-tuning.ts)
  const p = alexnet(args, { netns: ns, nodeArgs, env: withMallocTuning(process.env) });
  cleanups.push(() => p.proc.exitCode === null && p.proc.kill('SIGKILL'));
  return p;
}

function imagesPerSec(runDir: string): { imagesPerSec: number; stepMs: number } {
  // the first step compiles the kernels
  const stepMs = median(stepTimesMs(readRunEvents(runDir)).slice(1));
  return { imagesPerSec: (argv.batch / stepMs) * 1000, stepMs };
}

async function mustFinish(what: string, p: Proc): Promise<void> {
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`${what} exited with ${code}:\n${p.output().slice(-2000)}`);
}

const run = ['--preset', argv.preset, '--batch', String(argv.batch), '--steps', String(argv.steps), '--max-restarts', '0', ...(argv['queue-steps'] ? [] : ['--no-queue-steps'])];
const say = (s: string) => process.stdout.write(s + '\n');
say(`across hosts: preset ${argv.preset}, batch ${argv.batch}, ${argv.steps} steps a run, ${argv.delay} ms each way (${2 * argv.delay} ms round trips), webasm, ${os.cpus().length} CPU cores, steps ${argv['queue-steps'] ? 'queued' : 'not queued'}`);
try {
  for (const n of argv['micro-batches']) {
    const mb = ['--micro-batches', n];
    const loopDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-bench-loop-'));
    const nsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-bench-hosts-'));
    cleanups.push(() => [loopDir, nsDir].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
    await mustFinish('launch on loopback', alexnetIn(['launch', ...run, ...mb, '--backend', 'webasm', '--run-dir', loopDir]));
    const loop = imagesPerSec(loopDir);

    const { c, w0, w1 } = threeHosts((f) => cleanups.push(f));
    const netem = addNetem([c, w0, w1], argv.delay);
    // the workers as launch starts them on loopback: half the cores each (pinned to them), the garbage collector on a lone kernel thread
    const threads = colocatedThreads();
    const { cpus } = planCpus(true, true);
    const workers = [w0, w1].map((h, tower) =>
      alexnetIn(['worker', '--tower', String(tower), '--preset', argv.preset, '--host', h.address, '--port', String(PORT), '--backend', 'webasm', '--max-batch', String(argv.batch), ...cpuWorkerArgs(tower, threads, cpus), ...TOKEN], h.ns, workerNodeFlags(threads)),
    );
    await Promise.all(workers.map((w) => w.waitFor(/listening on/)));
    let addresses = [w0, w1].map((h) => `${h.address}:${PORT}`);
    if (!netem) {
      await Promise.all([w0, w1].map((h) => startRelay(h, RELAY_PORT, PORT, argv.delay, (f) => cleanups.push(f))));
      addresses = [w0, w1].map((h) => `${h.address}:${RELAY_PORT}`);
    }
    await mustFinish('the coordinator across the namespaces', alexnetIn(['coordinator', '--workers', addresses.join(','), ...run, ...mb, '--run-dir', nsDir, ...TOKEN], c.ns));
    const far = imagesPerSec(nsDir);
    say(`micro-batches ${n}: loopback ${loop.imagesPerSec.toFixed(1)} images/s (median step ${loop.stepMs.toFixed(0)} ms); across three hosts (${netem ? 'tc netem' : 'a relay in each worker\'s namespace: this kernel has no netem'}) ${far.imagesPerSec.toFixed(1)} images/s (${far.stepMs.toFixed(0)} ms): ${(far.imagesPerSec / loop.imagesPerSec).toFixed(2)}x`);
    cleanup();
  }
} catch (e) {
  process.stderr.write(`bench/across-hosts.ts: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
cleanup();
