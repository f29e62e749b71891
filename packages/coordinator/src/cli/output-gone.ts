/**
 * Training outlives its terminal: when whatever reads this process's output goes away (the terminal closed, an
 * SSH session dropped, `| tee log` killed, `| head`), writing to stdout or stderr fails with EPIPE or EIO. Node
 * throws that as an unhandled 'error' event, which would end a run of days without its checkpoint. The long-running
 * commands (launch, coordinator, worker) keep going instead: the run directory has every line that matters
 * (metrics.jsonl, the processes' logs), and later writes to the lost stream are dropped.
 */
const GONE = new Set(['EPIPE', 'EIO', 'ECONNRESET', 'ERR_STREAM_DESTROYED']);

/** Keeps the process running when stdout or stderr loses its reader; `onGone` is told once, with the stream's name and the error's code. */
export function surviveLostOutput(onGone: (stream: 'stdout' | 'stderr', code: string) => void = () => {}): void {
  let told = false;
  for (const [name, s] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (!GONE.has(e.code ?? '')) {
        // not a lost reader: as Node would have it
        process.nextTick(() => {
          throw e;
        });
        return;
      }
      if (told) return;
      told = true;
      onGone(name, e.code!);
    });
  }
}
