/**
 * The two-worker run of the benchmarks (bench/distributed.ts, bench/train-step.ts): two
 * `alexnet worker` processes on free loopback ports, driven by a coordinator in this process for
 * `warmup + iters` steps of synthetic data (`Coordinator.run`, as training drives them: the next batch made
 * during the step, the next step queued unless `queueSteps` is false), then stopped. Reports images/s (median step) and, for
 * each worker, where its step time went: computing, waiting on the exchange with its peer, and
 * the update; plus the bytes that crossed per step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import readline from 'node:readline';
import { median, type ModelSpec, type RequestedBackend, type SgdHyper } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource, alexnetBin, colocatedThreads, cpuWorkerArgs, mallocDescription, planCpus, workerNodeFlags, type StepMetrics } from '@alexnet-mp/coordinator';

export interface TwoWorkerResult {
  kind: 'distributed';
  preset: string;
  backend: RequestedBackend;
  batch: number;
  cpus: number;
  malloc: string;
  imagesPerSec: number;
  medianStepMs: number;
  exchangeShare: number[];
  /** Per worker: the share of its step time its tensors were in flight while it computed (the update of finished layers). */
  exchangeHiddenShare: number[];
  computeShare: number[];
  updateShare: number[];
  coordinatorOverheadMs: number;
  /** The CPU time of this process (the coordinator, its batch-making threads included) a timed step. */
  coordinatorCpuMs: number;
  crossingBytesPerStep: number;
  /** The micro-batches of the timed steps (with 'auto', as chosen before them). */
  microBatches: number;
  /** Each worker's kernel threads (`worker --threads`); null: not given (webgpu). */
  threads: number | null;
  /** The workers' Node.js flags, as launch gives them (launch-devices.ts workerNodeFlags). */
  nodeFlags: string[];
  /** Each worker's CPUs (worker --cpus), null: not pinned. */
  pinnedTo: readonly [string, string] | null;
  /** Whether the steps were queued (each sent while the one before ran). */
  queueSteps: boolean;
  /** The number of the first timed step (after the untimed ones of 'auto' and the warm-up). */
  firstTimedStep: number;
}

export interface TwoWorkerOptions {
  spec: ModelSpec;
  backend: RequestedBackend;
  batch: number;
  warmup: number;
  iters: number;
  hyper: SgdHyper;
  /** One line per step and per event (none: silent). */
  log?: (line: string) => void;
  /** Micro-batches a step (default 1); 'auto' steps untimed until the coordinator has chosen, then times warmup + iters steps. */
  microBatches?: number | 'auto';
  /** The workers' stderr: inherited (default) or dropped. */
  workerStderr?: 'inherit' | 'ignore';
  /** Each worker's kernel threads on webasm (and auto); default: as launch gives them (half the cores each, colocatedThreads). */
  threads?: number;
  /** CPU workers (webasm, cpu) on cores of their own, as launch gives them (default true; launch-devices.ts planCpus). */
  pinCpus?: boolean;
  /** Each step sent while the one before runs (default true; CoordinatorOptions.queueSteps). */
  queueSteps?: boolean;
  /** Each worker writes its crossings' timeline to PREFIX.tower0.jsonl and PREFIX.tower1.jsonl (worker --trace-crossings). */
  traceCrossings?: string;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Runs the two workers for `warmup + iters` steps; the workers are stopped when it returns or throws. */
export async function runTwoWorkers(opts: TwoWorkerOptions): Promise<TwoWorkerResult> {
  const { spec, backend, batch: B, warmup, iters, hyper } = opts;
  // on CPU backends the two workers share this machine's cores, as launch shares them
  // (auto: webasm where no GPU answers, as launch decides it; the worker says "ignored" on a GPU)
  const threads = backend === 'webasm' || backend === 'auto' ? (opts.threads ?? colocatedThreads()) : null;
  const nodeFlags = workerNodeFlags(threads);
  // and, as launch does, each on cores of its own (not on a GPU: 'auto' here means a CPU only where no GPU answers)
  const cpuPlan = planCpus(backend === 'webasm' || backend === 'cpu', opts.pinCpus ?? true);
  const log = opts.log ?? (() => {});
  if (cpuPlan.line) log(`  ${cpuPlan.line}`);
  const source = new SyntheticSource(spec, 1);
  const steps = warmup + iters;
  const procs: ChildProcess[] = [];
  const killAll = () => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL'));
  process.on('exit', killAll);
  let coordinator: Coordinator | null = null;
  try {
    const addresses = await Promise.all(
      ([0, 1] as const).map((t) => {
        const proc = spawn(process.execPath, [...nodeFlags, alexnetBin, 'worker', '--tower', String(t), '--port', '0', '--preset', spec.name, '--backend', backend, '--max-batch', String(B), ...cpuWorkerArgs(t, threads, cpuPlan.cpus), ...(opts.traceCrossings === undefined ? [] : ['--trace-crossings', `${opts.traceCrossings}.tower${t}.jsonl`]), '--exit-with-stdin'], {
          stdio: ['pipe', 'pipe', opts.workerStderr ?? 'inherit'],
        });
        procs.push(proc);
        return new Promise<string>((resolve, reject) => {
          readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
            const m = / listening on (\S+)$/.exec(line);
            if (m) resolve(m[1]!);
          });
          proc.on('exit', (code, signal) => reject(new Error(`worker ${t} exited (${signal ?? code}) before listening`)));
        });
      }),
    );
    coordinator = new Coordinator({ spec, workers: addresses as [string, string], batch: B, seed: 1, hyper, source, microBatches: opts.microBatches ?? 1, queueSteps: opts.queueSteps ?? true, info: (l) => log(`  ${l}`) });
    await coordinator.start();
    const metrics: StepMetrics[] = [];
    const describe = (m: StepMetrics) => `${m.ms.toFixed(0)} ms, ${m.micro_batches} micro-batch${m.micro_batches > 1 ? 'es' : ''}, exchange waited ${m.workers.map((w) => w.exchange_ms.toFixed(0)).join(' / ')} ms, hidden ${m.workers.map((w) => w.exchange_hidden_ms.toFixed(0)).join(' / ')} ms`;
    // 'auto': the steps the coordinator measures before it settles N are not timed
    let first = 0;
    for (; !coordinator.microBatches.settled; first++) log(`  two workers, choosing the micro-batches, step ${first + 1}: ${describe(await coordinator.step(await source.batch(first, B)))}`);
    let cpuAtWarm = process.cpuUsage();
    await coordinator.run(steps, (m) => {
      metrics.push(m);
      const s = metrics.length - 1;
      if (s === warmup - 1) cpuAtWarm = process.cpuUsage();
      log(`  two workers, step ${s + 1}/${steps}${s < warmup ? ' (warm-up)' : ''}: ${describe(m)}`);
    });
    const timed = metrics.slice(warmup);
    const cpu = process.cpuUsage(cpuAtWarm);
    const stepMs = median(timed.map((m) => m.ms));
    const share = (t: number, k: 'exchange_ms' | 'exchange_hidden_ms' | 'compute_ms' | 'update_ms') => sum(timed.map((m) => m.workers[t]![k])) / sum(timed.map((m) => m.workers[t]!.total_ms));
    return {
      kind: 'distributed',
      preset: spec.name,
      backend,
      batch: B,
      cpus: os.cpus().length,
      malloc: mallocDescription(),
      imagesPerSec: (B / stepMs) * 1000,
      medianStepMs: stepMs,
      exchangeShare: [share(0, 'exchange_ms'), share(1, 'exchange_ms')],
      exchangeHiddenShare: [share(0, 'exchange_hidden_ms'), share(1, 'exchange_hidden_ms')],
      computeShare: [share(0, 'compute_ms'), share(1, 'compute_ms')],
      updateShare: [share(0, 'update_ms'), share(1, 'update_ms')],
      coordinatorOverheadMs: median(timed.map((m) => m.ms - Math.max(m.workers[0]!.total_ms, m.workers[1]!.total_ms))),
      coordinatorCpuMs: (cpu.user + cpu.system) / 1000 / Math.max(1, timed.length),
      crossingBytesPerStep: timed[0]?.crossing_bytes ?? 0,
      microBatches: timed[timed.length - 1]?.micro_batches ?? 1,
      threads,
      nodeFlags,
      pinnedTo: cpuPlan.cpus,
      queueSteps: opts.queueSteps ?? true,
      firstTimedStep: first + warmup,
    };
  } finally {
    coordinator?.close();
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => (p.on('exit', r), p.stdin?.end('quit\n'))))));
    process.off('exit', killAll);
  }
}

/** The two-worker result in one line. */
export function describeTwoWorkers(d: TwoWorkerResult): string {
  return (
    `two workers${d.threads === null ? '' : ` (${d.threads} kernel thread${d.threads === 1 ? '' : 's'} each${d.nodeFlags.length > 0 ? `, node ${d.nodeFlags.join(' ')}` : ''}${d.pinnedTo ? `, on CPUs ${d.pinnedTo.join(' / ')}` : ', not pinned'})`}, ${d.microBatches} micro-batch${d.microBatches > 1 ? 'es' : ''} a step${d.queueSteps ? '' : ', steps not queued'}: ${d.imagesPerSec.toFixed(1)} images/s (median step ${d.medianStepMs.toFixed(0)} ms); ` +
    `time waiting on the exchange: tower 0 ${(100 * d.exchangeShare[0]!).toFixed(0)}%, tower 1 ${(100 * d.exchangeShare[1]!).toFixed(0)}%; ` +
    `exchange hidden behind compute: tower 0 ${(100 * d.exchangeHiddenShare[0]!).toFixed(0)}%, tower 1 ${(100 * d.exchangeHiddenShare[1]!).toFixed(0)}%; ` +
    `${(d.crossingBytesPerStep / 1024).toFixed(0)} KiB crossed per step; ${d.queueSteps ? 'workers idle between steps' : 'coordinator round trip'} ${Math.max(0, d.coordinatorOverheadMs).toFixed(1)} ms; coordinator CPU ${d.coordinatorCpuMs.toFixed(1)} ms a step`
  );
}
