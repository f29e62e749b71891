/** Metrics as JSON lines: to stdout, and to <run-dir>/metrics.jsonl when a run directory is given. */
import fs from 'node:fs';
import path from 'node:path';
import type { StepMetrics } from './coordinator.js';
import type { EvalMetrics } from './evaluation.js';
import { makeDir } from '@alexnet-mp/core';
import { StepTally } from './step-tally.js';
import { repairTornTail, runDirError, writeFileAtomic } from './run-files.js';

export class MetricsLog {
  private readonly file: string | null;
  private readonly observers: ((event: object) => void)[] = [];
  private lastTraffic: string | null = null;

  constructor(
    readonly runDir: string | undefined,
    private readonly out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
    info: (line: string) => void = () => {},
  ) {
    if (runDir) {
      makeDir(runDir, 'the run directory');
      this.file = path.join(runDir, 'metrics.jsonl');
      try {
        // a run killed in the middle of a line (or a full disk) left it torn: cut it off, say so
        const dropped = repairTornTail(this.file);
        if (dropped > 0) {
          fs.appendFileSync(this.file, JSON.stringify({ event: 'repaired', file: 'metrics.jsonl', dropped_bytes: dropped, time: new Date().toISOString() }) + '\n');
          info(`${this.file} ended in a torn line (${dropped} bytes: a process stopped while writing it): cut off, and a repaired line written`);
        }
      } catch (e) {
        throw runDirError(this.file, e);
      }
    } else this.file = null;
  }

  /**
   * One event as a line. A step's per-crossing traffic is the same every step of a run: it is written on
   * the first step line of this process and again only when it changes (it was 60% of every line: a long
   * run's metrics.jsonl ran to tens of megabytes); observers still get every event whole.
   */
  write(event: object): void {
    let shown = event;
    const kind = (event as { event?: string }).event;
    // every line but a step's (timed by its ms) and the run's (its started) says when it happened: a restart,
    // a checkpoint, an evaluation or the end can be dated from the file alone
    if (kind !== 'step' && kind !== 'run' && !('time' in event)) shown = { ...event, time: new Date().toISOString() };
    if (kind === 'step' && 'traffic' in event) {
      const traffic = JSON.stringify(event.traffic);
      if (traffic === this.lastTraffic) {
        const { traffic: _same, ...rest } = event as { traffic: unknown };
        shown = rest;
      } else this.lastTraffic = traffic;
    }
    const line = JSON.stringify(shown);
    this.out(line);
    if (this.file) {
      try {
        fs.appendFileSync(this.file, line + '\n');
      } catch (e) {
        // a part of the line may have been written: cut it off so that the next line starts clean
        try {
          repairTornTail(this.file);
        } catch {
          // the error below says what is wrong
        }
        throw runDirError(this.file, e);
      }
    }
    for (const o of this.observers) o(event);
  }

  /** Also gives every event written from now on to `fn` (e.g. the dashboard's feed). */
  observe(fn: (event: object) => void): void {
    this.observers.push(fn);
  }

  /** run.json: what the run was (the 'run' event). */
  writeRunFile(event: object): void {
    if (this.runDir) writeFileAtomic(path.join(this.runDir, 'run.json'), JSON.stringify(event, null, 2) + '\n');
  }
}

export interface RunSummary {
  event: 'done';
  steps: number;
  elapsed_s: number;
  median_step_ms: number;
  images_per_s: number;
  loss_last: number | null;
  top1_error_last: number | null;
  /** Per worker: the share of its step time spent waiting on the exchange with its peer. */
  exchange_share: number[];
  /** Per worker: the share of its step time during which its tensors were in flight while it computed (hidden exchange). */
  exchange_hidden_share: number[];
  crossing_bytes_per_step: number;
  /** The micro-batches of the last step (--micro-batches; 1: the whole batch at once). */
  micro_batches: number;
  /** The last evaluation (--eval-every), null when none ran. */
  eval_last: { step: number; loss: number; top1_error: number; top5_error: number; images: number } | null;
}

/** The end-of-run summary of `steps` (step-tally.ts). Step 0 compiles the kernels, so the rates leave it out when there are more steps. */
export function summarise(steps: StepMetrics[], elapsedMs: number, evals: readonly EvalMetrics[] = []): RunSummary {
  const tally = new StepTally();
  for (const m of steps) tally.add(m);
  return tally.summary(elapsedMs, evals);
}
