/**
 * `node --import tsx bench/kernel-launch.ts [--threads N] [--cells 4096 16384 262144] [--chains 100]` (webasm):
 * what one kernel call costs the caller when the kernel itself does almost nothing. A chain of 150 calls of
 * elementwise kernels (`x * s + 1`, each its own kernel, results kept in place as the training step keeps
 * them: reuseOutput) is timed per call, for each output size, with every run of 4,096 cells or more on the
 * worker pool (ALEXNET_WASM_THREAD_CHOICE=size) and with the measured choice between the pool and the calling
 * thread (the default), and with no worker threads at all (--threads 1). The first 5 chains are not timed
 * (kernels compile, and the measured choice makes its trial).
 */
import os from 'node:os';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import { Device } from '@alexnet-mp/core';
import { Kernel, type KernelThis } from '../packages/core/src/kernels/kernel-runner.js';

const argv = await benchArgs(yargs(hideBin(process.argv)), { threads: 2, chains: 'count' })
  .option('threads', { type: 'number', default: 2, describe: 'worker threads of the pool (2 or more)' })
  .option('cells', { type: 'array', number: true, default: [4096, 16384, 262144], describe: 'output sizes, floats' })
  .option('chains', { type: 'number', default: 100, describe: 'timed chains of 150 calls per size and setting' })
  .strict()
  .parseAsync();

const LENGTH = 150;
const WARMUP = 5;

/** Microseconds a call (wall), over `chains` chains of LENGTH calls, with `threads` kernel threads and the kernels' thread choice `choice`. */
async function perCall(threads: number, cells: number, choice: 'size' | 'measure'): Promise<number> {
  process.env.ALEXNET_WASM_THREAD_CHOICE = choice;
  const dev = await Device.create('webasm', { onFallback: 'throw' }, { threads });
  const ks = Array.from({ length: LENGTH }, (_, i) =>
    new Kernel(dev, `k${i}`, function (this: KernelThis, a: Float32Array, s: number) {
      return a[this.thread.x]! * s + 1;
    }, { output: [cells], reuseOutput: true }),
  );
  const x = new Float32Array(cells).fill(1);
  let ms = 0;
  for (let chain = 0; chain < WARMUP + argv.chains; chain++) {
    const t0 = performance.now();
    let y = await ks[0]!.run(x, 0.5);
    for (let i = 1; i < LENGTH; i++) y = await ks[i]!.run(y, 0.5);
    if (chain >= WARMUP) ms += performance.now() - t0;
    if (!Number.isFinite(y[0]!)) throw new Error('the chain computed a non-number');
  }
  dev.destroy();
  return (ms * 1000) / (argv.chains * LENGTH);
}

console.log(`webasm, ${os.availableParallelism()} CPUs; a call of an elementwise kernel (x * s + 1), wall time per call over ${argv.chains} chains of ${LENGTH} calls (the first ${WARMUP} chains untimed)`);
for (const cells of argv.cells as number[]) {
  const size = await perCall(argv.threads, cells, 'size');
  const measured = await perCall(argv.threads, cells, 'measure');
  const one = await perCall(1, cells, 'measure');
  console.log(`${cells} floats: pool of ${argv.threads}, every run on the pool (size) ${size.toFixed(1)} us; measured choice ${measured.toFixed(1)} us; no worker threads (--threads 1) ${one.toFixed(1)} us`);
}
process.exit(0);
