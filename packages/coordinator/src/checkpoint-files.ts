/**
 * The checkpoint files a run writes into its checkpoint folder, and when it last wrote one: checkpoints by
 * steps and epochs rotate `keep` deep (core's writeCheckpointFile); one written for the time alone (`--checkpoint-minutes`)
 * is replaced by the next checkpoint of any kind and does not count against `keep`, so that the checkpoints by
 * steps and epochs stay `keep` deep however often time writes one. A checkpoint by time says so in its run state
 * (`by_time`), and a run resumed from one replaces it in the same way.
 */
import { rmSync } from 'node:fs';
import { writeCheckpointFile } from '@alexnet-mp/core';

export class CheckpointFiles {
  /** When the last checkpoint was written, or the count restarted (performance.now()). */
  private writtenAt = performance.now();
  /** The latest checkpoint if it was written for the time alone: removed when the next one is written. */
  private byTime: string | null = null;

  constructor(private readonly c: { readonly dir: string; readonly keep: number }) {}

  /** Milliseconds since the last checkpoint was written, or `restartClock` (checkpoints by time). */
  sinceMs(): number {
    return performance.now() - this.writtenAt;
  }

  /** The minutes between checkpoints count from now (a run's start). */
  restartClock(): void {
    this.writtenAt = performance.now();
  }

  /** The run continues from `file` (resumed, or back to its last checkpoint); `byTime`: that file was written for the time alone. */
  continueFrom(file: string | null, byTime: boolean): void {
    this.byTime = byTime ? file : null;
  }

  /** Writes the checkpoint of `step` steps; `byTime`: written only because the minutes between checkpoints passed. Returns its path. */
  write(step: number, bytes: Buffer, byTime: boolean): string {
    const previous = this.byTime;
    // the rotation keeps `keep` others besides this one (if by time) and the previous one by time (removed below)
    const file = writeCheckpointFile(this.c.dir, step, bytes, this.c.keep + (byTime ? 1 : 0) + (previous ? 1 : 0));
    if (previous && previous !== file) rmSync(previous, { force: true });
    this.byTime = byTime ? file : null;
    this.writtenAt = performance.now();
    return file;
  }
}
