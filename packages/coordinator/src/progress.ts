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
}

/** Whether this process shows a progress bar (and then keeps the JSON lines off the terminal). */
export const progressBarWanted = (): boolean => Boolean(process.stderr.isTTY && process.stdout.isTTY);

export class Progress {
  private readonly multi: cliProgress.MultiBar | null = null;
  private readonly bar: cliProgress.SingleBar | null = null;
  private stopped = false;
  private losses: number[] = [];

  constructor(private readonly o: ProgressOptions) {
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

  /** After each step: the bar moves (the loss shown is the mean of the last 10 steps). */
  step(m: StepMetrics): void {
    if (!this.bar) return;
    this.losses.push(m.loss);
    if (this.losses.length > 10) this.losses.shift();
    const loss = this.losses.reduce((a, b) => a + b, 0) / this.losses.length;
    this.bar.update(m.step + 1, { ips: m.images_per_s.toFixed(1), loss: loss.toFixed(3) });
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
