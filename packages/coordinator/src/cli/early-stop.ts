/**
 * Signals before training starts. Opening the data may decode a folder into the cache for minutes (ILSVRC-2012's
 * training set: hours on a few cores); a signal then, or launch's "stop SIGNAL" line on stdin, stops the coordinator at
 * once, and the decoding's progress is kept for the next run (core's data/partial-decode.ts); so does stdin closing
 * when launch started it (launch killed outright: before training there is no step to end, so it stops at once). They are
 * there from the command's first checks (a process that dies of a signal would leave its run folder's lock behind); the
 * coordinator command replaces them with its own when training is about to start, its own added first: a signal
 * that comes as they change hands is not lost (Node drops a pending signal whose last listener went).
 */
import readline from 'node:readline';
import { closeActiveDecodings } from '@alexnet-mp/core/data';
import { signalExitCode } from '../signal-exit.js';

type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function stopBeforeTraining(withStdin: boolean, info: (line: string) => void): { dispose(): void } {
  const stop = (why: string, code: number) => {
    // a decoding in progress: its journal marked closed, the file free for the next run wherever it runs
    const { decodings, kept } = closeActiveDecodings();
    const decoding = decodings === 0 ? '' : kept > 0 ? ` (${kept} image${kept === 1 ? '' : 's'} decoded into the cache ${kept === 1 ? 'is' : 'are'} kept: the next run goes on from ${kept === 1 ? 'it' : 'them'})` : ' (the decoding had recorded no image yet: the next run starts it again)';
    info(`${why} before training started: stopping${decoding}`);
    process.exit(code);
  };
  const handlers = SIGNALS.map((sig) => [sig, () => stop(sig, signalExitCode(sig))] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  const lines = withStdin ? readline.createInterface({ input: process.stdin }) : null;
  let disposed = false;
  lines?.on('line', (line) => {
    // launch's "stop SIGNAL" (its first signal) and "now SIGNAL" (its second) both stop at once before training
    const m = /^(?:stop|now) (SIGINT|SIGTERM|SIGHUP)$/.exec(line.trim());
    if (m) stop(m[1]!, signalExitCode(m[1] as StopSignal));
  });
  // stdin closed: launch is gone (killed outright): before training nothing is lost by stopping at once
  lines?.on('close', () => {
    if (!disposed) stop('stdin closed', 1);
  });
  return {
    dispose() {
      disposed = true;
      for (const [sig, h] of handlers) process.off(sig, h);
      lines?.close();
    },
  };
}

/**
 * launch's signals before it starts its processes (the checks, the run folder locked, the look at the GPUs): a
 * signal stops it at once, saying so, its exit hooks run (the run folder's lock goes). `dispose` once launch's own
 * handlers are there (after them: a signal pending meanwhile is not lost).
 */
export function stopBeforeStart(say: (line: string) => void): { dispose(): void } {
  const handlers = SIGNALS.map(
    (sig) =>
      [
        sig,
        () => {
          say(`${sig} before any process started: stopping`);
          process.exit(signalExitCode(sig));
        },
      ] as const,
  );
  for (const [sig, h] of handlers) process.on(sig, h);
  return {
    dispose() {
      for (const [sig, h] of handlers) process.off(sig, h);
    },
  };
}
