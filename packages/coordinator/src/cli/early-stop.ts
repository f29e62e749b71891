/**
 * Signals before training starts. Opening the data may decode a folder into the cache for minutes (ILSVRC-2012's
 * training set: hours on a few cores); a signal then, or launch's "stop SIGNAL" line on stdin, stops the coordinator at
 * once, and the decoding's progress is kept for the next run (core's data/partial-decode.ts); so does stdin closing
 * when launch started it (launch killed outright: before training there is no step to end, so it stops at once). The coordinator
 * command replaces these handlers with its own when training is about to start.
 */
import readline from 'node:readline';
import { closeActiveDecodings } from '@alexnet-mp/core/data';
import { signalExitCode } from '../signal-exit.js';

type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function stopBeforeTraining(withStdin: boolean, info: (line: string) => void): { dispose(): void } {
  const stop = (why: string, code: number) => {
    // a decoding in progress: its journal marked closed, the file free for the next run wherever it runs
    closeActiveDecodings();
    info(`${why} before training started: stopping (images decoded into the cache so far are kept: the next run goes on from them)`);
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
