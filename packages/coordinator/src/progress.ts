/**
 * Progress of a training run for a person. On a terminal (stdout and stderr
 * both TTYs) a progress bar on stderr with the step, images/s, the loss and
 * the ETA; notes (evaluations, checkpoints) are printed above it. Otherwise
 * (pipes, files, `alexnet launch`'s children) plain lines through `info`, as
 * before; the metrics themselves are JSON lines (stdout, RUN_DIR/metrics.jsonl).
 *
 * The bar is cli-progress: a small, widely used, maintained library (3.x,
 * MIT, one dependency) that handles redraw, terminal width, ETA smoothing and
 * printing log lines above the bar, which we would otherwise hand-roll with
 * ANSI escapes.
 */
import cliProgress from 'cli-progress';
import type { StepMetrics } from './coordinator.js';

export interface ProgressOptions {
  /** The run's last step number + 1 (the bar's end), and the step it starts at (a resumed run). */
  readonly total: number;
  readonly start: number;
  readonly batch: number;
  readonly info: (line: string) => void;
  /** Draw a bar; default: when stdout and stderr are terminals. */
  readonly bar?: boolean;
  /** Where the bar is drawn (default stderr). */
  readonly stream?: NodeJS.WritableStream;
  /** Without a bar: a line in words through `info` at most this often (default PROGRESS_WORDS_MS; 0: none). */
  readonly wordsEveryMs?: number;
  /** The clock, in ms (tests). */
  readonly now?: () => number;
}

/** Without a bar (piped, a file, launch's children), where the run stands is said in words at most this often. */
export const PROGRESS_WORDS_MS = 30_000;

/** "1h 05m", "4m 10s", "12s": a remaining time. */
export function shortDuration(s: number): string {
  const t = Math.max(0, Math.round(s));
  if (t >= 3600) return `${Math.floor(t / 3600)}h ${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
  if (t >= 60) return `${Math.floor(t / 60)}m ${String(t % 60).padStart(2, '0')}s`;
  return `${t}s`;
}

/** Whether this process shows a progress bar (and then keeps the JSON lines off the terminal). */
export const progressBarWanted = (): boolean => Boolean(process.stderr.isTTY && process.stdout.isTTY);

export class Progress {
  private readonly multi: cliProgress.MultiBar | null = null;
  private readonly bar: cliProgress.SingleBar | null = null;
  private stopped = false;
  private losses: number[] = [];
  private readonly now: () => number;
  private readonly startedAt: number;
  private lastWordsAt: number;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? (() => performance.now());
    this.startedAt = this.lastWordsAt = this.now();
    if (o.bar ?? progressBarWanted()) {
      this.multi = new cliProgress.MultiBar(
        {
          stream: o.stream ?? process.stderr,
          format: 'step {value}/{total} [{bar}] {percentage}% | {ips} images/s | loss {loss} | ETA {eta_formatted}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 20,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar = this.multi.create(Math.max(o.total, 1), o.start, { ips: '-', loss: '-' });
    }
  }

  /**
   * After each step: the bar moves (the loss shown is the mean of the last 10 steps); without a bar, a line in
   * words every `wordsEveryMs`: "step 120 of 5000: 45.2 images/s, loss 1.234 (the last 10 steps), about 2h 10m left".
   */
  step(m: StepMetrics): void {
    this.losses.push(m.loss);
    if (this.losses.length > 10) this.losses.shift();
    const loss = this.losses.reduce((a, b) => a + b, 0) / this.losses.length;
    if (this.bar) {
      this.bar.update(m.step + 1, { ips: m.images_per_s.toFixed(1), loss: loss.toFixed(3) });
      return;
    }
    const every = this.o.wordsEveryMs ?? PROGRESS_WORDS_MS;
    const now = this.now();
    if (every <= 0 || now - this.lastWordsAt < every) return;
    this.lastWordsAt = now;
    const done = m.step + 1;
    // the pace of this session so far (start-up included: the estimate errs long at first)
    const perStep = (now - this.startedAt) / 1000 / Math.max(1, done - this.o.start);
    const left = done < this.o.total ? `, about ${shortDuration(perStep * (this.o.total - done))} left` : '';
    this.o.info(`step ${done} of ${this.o.total}: ${m.images_per_s.toFixed(1)} images/s, loss ${loss.toFixed(3)} (the last ${this.losses.length} step${this.losses.length === 1 ? '' : 's'})${left}`);
  }

  /** A line for a person: above the bar, or through `info`. */
  note(line: string): void {
    if (this.multi && !this.stopped) this.multi.log(`${line}\n`);
    else this.o.info(line);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    // cli-progress prints logged lines at its next redraw (5 a second) and its stop() does not:
    // redraw once first, or the last notes of a run (its checkpoint, why it stopped) would be lost
    this.multi?.update();
    this.multi?.stop();
  }
}
