/**
 * The benchmarks the README quotes run end to end (`npm run bench`, tiny preset, two timed steps):
 * ours against the TensorFlow.js peer in one run, and two workers against one process. Their numbers
 * are not judged here (that is what the benchmarks are for), only that each side ran what it says.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runBench } from './helpers.js';

/** `npm run bench -- ARGS --json`'s JSON lines; a failed run fails the test with its stderr. */
async function bench(args: string[]): Promise<Record<string, unknown>[]> {
  // the malloc settings as a user who set none gets them
  const env = { ...process.env };
  delete env.ALEXNET_MALLOC_TUNING;
  delete env.GLIBC_TUNABLES;
  const r = await runBench(args, env);
  if (r.code !== 0) throw new Error(`bench ${args.join(' ')}: ${r.signal ?? `exit ${r.code}`}\n${r.err}`);
  return r.json;
}

test('npm run bench: our step and the peer\'s in one run, the peer\'s missing kernel named, the ratio theirs', async (t) => {
  const [r] = await bench(['--preset', 'tiny', '--batch', '8', '--iters', '2', '--warmup', '1']);
  t.truthy(r);
  t.is(r!.preset, 'tiny');
  t.deepEqual(r!.kernelModes, ['webasm'], 'every kernel ran on webasm: none fell back to cpu');
  t.deepEqual(r!.peerFallbacks, ['Conv2DBackpropFilter']);
  t.regex(String(r!.peer), /TensorFlow\.js 4\.22\.\d+ wasm backend .*fallback JS kernels: Conv2DBackpropFilter/);
  t.regex(String(r!.malloc), /GLIBC_TUNABLES=.*mmap_max=0/, 'run with the training processes\' malloc settings');
  const ours = r!.imagesPerSec as number;
  const peer = r!.peerImagesPerSec as number;
  t.true(ours > 0 && peer > 0);
  t.true(Math.abs((r!.ratio as number) - ours / peer) < 1e-9);
  // CPU time and main-thread GC of the timed steps: a step takes CPU, and the observer saw the pauses counted
  t.true((r!.cpuSecondsPerStep as number) > 0);
  t.true(Number.isInteger((r!.gcPausesPerStep as number) * 2) && (r!.gcPausesPerStep as number) >= 0);
  t.true((r!.gcMsPerStep as number) >= 0 && ((r!.gcPausesPerStep as number) > 0 || r!.gcMsPerStep === 0));
  // the convolutions alone, against the SIMD ceiling the bench measured on this machine
  const conv = r!.convolutions as { gflops: number; ms: number; share: number; ceiling: { perThread: number; allThreads: number; threads: number } };
  t.true(conv.ceiling.perThread > 0 && conv.ceiling.allThreads > 0 && conv.ceiling.threads >= 1);
  t.true(conv.gflops > 0 && conv.ms > 0);
  t.true(Math.abs(conv.share - conv.gflops / conv.ceiling.allThreads) < 1e-9);
});

test('npm run bench -- --distributed: two worker processes and the one-process run, and their ratio', async (t) => {
  const lines = await bench(['--distributed', '--preset', 'tiny', '--batch', '8', '--iters', '2']);
  t.deepEqual(lines.map((l) => l.kind), ['distributed', 'one-process', 'comparison']);
  const [d, one, cmp] = lines as [Record<string, number>, Record<string, number>, Record<string, number>];
  t.true(d.imagesPerSec! > 0 && one.imagesPerSec! > 0);
  t.true(d.crossingBytesPerStep! > 0, 'tensors crossed between the workers');
  t.true(d.coordinatorCpuMs! > 0, 'the coordinator\'s CPU a step is measured');
  t.true(Math.abs(cmp.ratio! - d.imagesPerSec! / one.imagesPerSec!) < 1e-9);
});

test('bench/stream-latency.ts: a large tensor on the exchange stream (aligned, and with the stock serialiser) and on a plain TCP socket, one at a time, with the rate', async (t) => {
  for (const mode of [[], ['--unaligned'], ['--tcp']]) {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/stream-latency.ts', '--count', '8', '--busy', '0', '--bytes', '2000000', ...mode]);
    const m = /^(\d+) tensors of 2000000 bytes, .*, (exchange stream \((aligned|stock serialiser); (\d+) of (\d+) read in place\)|plain TCP): send to arrival p10 ([\d.]+) ms, median ([\d.]+) ms, p90 ([\d.]+) ms \((\d+) MB\/s at the median\)$/.exec(stdout.trim());
    t.truthy(m, stdout);
    t.is(m![1], '6', 'the first quarter warms up');
    if (mode[0] === '--tcp') t.is(m![2], 'plain TCP');
    else {
      t.is(m![3], mode[0] === '--unaligned' ? 'stock serialiser' : 'aligned');
      t.is(m![5], '6');
      // the exchange stream's own serialiser puts every tensor where the receiver reads it in place
      if (!mode[0]) t.is(m![4], '6');
    }
    const [p10, median, p90, rate] = [m![6], m![7], m![8], m![9]].map(Number) as [number, number, number, number];
    t.true(p10 > 0 && p10 <= median && median <= p90);
    // the rate is of the unrounded median: within what the median's rounding to 0.01 ms and its own to 1 MB/s allow
    t.true(rate >= 2000 / (median + 0.005) - 1 && rate <= 2000 / Math.max(median - 0.005, 1e-9) + 1, `${rate} MB/s at a median of ${median} ms`);
  }
});

test('the benchmarks say a bad command line in one line, exit 2, before anything runs: counts and sizes checked, unknown options and choices named', async (t) => {
  const run = async (args: string[]) => {
    try {
      await promisify(execFile)(process.execPath, ['--import', 'tsx', ...args], { timeout: 60_000 });
      return { code: 0, stderr: '' };
    } catch (e) {
      const err = e as { code: number; stderr: string };
      return { code: err.code, stderr: err.stderr };
    }
  };
  for (const [args, want] of [
    [['bench/main.ts', '--iters', '0', '--preset', 'tiny'], 'main.ts: --iters 0: give a whole number of 1 or more; --help lists the options'],
    [['bench/main.ts', '--batch', '-4'], 'main.ts: --batch -4: give a whole number of 1 or more; --help lists the options'],
    [['bench/main.ts', '--warmup', '-1'], 'main.ts: --warmup -1: give a whole number of 0 or more; --help lists the options'],
    [['bench/main.ts', '--distributed', '--iters', 'abc'], 'main.ts: --iters abc: give a whole number of 1 or more; --help lists the options'],
    [['bench/main.ts', '--preset', 'huge'], 'main.ts: --preset huge: choose paper, cifar, tiny; --help lists the options'],
    [['bench/main.ts', '--bogus'], 'main.ts: unknown option --bogus; --help lists the options'],
    [['bench/crossing-waits.ts', '--batch', '2.5'], 'crossing-waits.ts: --batch 2.5: give a whole number of 1 or more; --help lists the options'],
    [['bench/across-hosts.ts', '--steps', '1'], 'across-hosts.ts: --steps 1: give a whole number of 2 or more; --help lists the options'],
    [['bench/kernel-launch.ts', '--threads', '1'], 'kernel-launch.ts: --threads 1: give a whole number of 2 or more; --help lists the options'],
    [['bench/stream-latency.ts', '--bytes', '6'], "stream-latency.ts: --bytes 6: give a multiple of 4 (the tensor's floats)"],
    [['bench/stream-latency.ts', '--count', '0'], 'stream-latency.ts: --count 0: give a whole number of 1 or more; --help lists the options'],
  ] as [string[], string][]) {
    const r = await run(args);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr.trim(), want, args.join(' '));
  }
});
