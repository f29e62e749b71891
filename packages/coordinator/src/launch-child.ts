/**
 * One child process of `alexnet launch` (a worker or the coordinator): its output read line by line, passed on and
 * kept in RUN_DIR/<name>.log, the last lines of its stderr for the report of a failure, its exit, and how launch
 * stops it.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

/** Dawn's note, printed by its native code when it opens the software adapter (lavapipe), on each of two limits. */
const DAWN_LIMIT_NOTE = /^Warning: maxDynamic\w+PerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

export type Name = 'worker0' | 'worker1' | 'coord';

/**
 * Ends a log and waits until what it holds is on the disk (launch's process.exit would drop the lines a stream still
 * holds), 5 s at most (a log on storage that hangs).
 */
export function endLog(log: fs.WriteStream | null): Promise<void> {
  if (!log) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const giveUp = setTimeout(resolve, 5000);
    log.end(() => {
      clearTimeout(giveUp);
      resolve();
    });
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Child {
  readonly stderrTail: string[] = [];
  exit: Exit | null = null;
  readonly exited: Promise<Exit>;
  private log: fs.WriteStream | null;

  constructor(
    readonly name: Name,
    readonly proc: ChildProcess,
    runDir: string | undefined,
    onLine: (child: Child, line: string, stream: 'out' | 'err') => void,
    onLogError: (file: string, e: Error) => void,
  ) {
    const logFile = runDir ? path.join(runDir, `${name}.log`) : null;
    this.log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
    // a log that cannot be written (a full disk, a read-only mount) ends the run with one line, never a crash
    this.log?.on('error', (e) => {
      this.log = null;
      onLogError(logFile!, e);
    });
    this.exited = new Promise<Exit>((resolve) => {
      // 'close' comes after 'exit' once the child's output is all read, so its last lines print first
      proc.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      proc.on('error', (e) => {
        // spawn failed: no 'exit' will follow
        this.stderrTail.push(e.message);
        if (!this.exit) {
          this.exit = { code: 127, signal: null };
          resolve(this.exit);
        }
      });
    });
    for (const [stream, s] of [['out', proc.stdout], ['err', proc.stderr]] as const) {
      if (!s) continue;
      readline.createInterface({ input: s, crlfDelay: Infinity }).on('line', (line) => {
        // Dawn's notes on the software adapter's limits (nothing to act on; docs/known-problems.md): not passed on
        if (DAWN_LIMIT_NOTE.test(line)) return;
        // the coordinator's step lines are in RUN_DIR/metrics.jsonl already: coord.log keeps the rest (half the bytes of a run)
        if (!(stream === 'out' && name === 'coord' && line.startsWith('{"event":"step"'))) this.log?.write(line + '\n');
        if (stream === 'err') {
          this.stderrTail.push(line);
          if (this.stderrTail.length > 12) this.stderrTail.shift();
        }
        onLine(this, line, stream);
      });
    }
    // a closed pipe when the child dies must not crash the launcher
    proc.stdin?.on('error', () => {});
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  alive(): boolean {
    return this.exit === null;
  }

  /**
   * The line "quit" and its stdin closed (a child of launch stops then: --exit-with-stdin), SIGTERM after 2 s (a worker
   * takes its first signal as a stop of the whole run, and serves until its stdin closes), SIGKILL after
   * `graceMs`; resolves when the process has exited and its last lines are in its log.
   */
  async stop(graceMs: number): Promise<Exit> {
    if (!this.exit) {
      // "quit" first: stdin closing alone tells a child that the launcher was killed, which it outlives to save the run
      this.proc.stdin?.end('quit\n');
      const term = setTimeout(() => {
        if (!this.exit) this.proc.kill('SIGTERM');
      }, Math.min(2000, graceMs / 2));
      const timer = setTimeout(() => {
        if (!this.exit) this.proc.kill('SIGKILL');
      }, graceMs);
      await this.exited;
      clearTimeout(term);
      clearTimeout(timer);
    }
    // a process that ended by itself too (a restarted one's earlier run): its log ended once
    const log = this.log;
    this.log = null;
    await endLog(log);
    return this.exit!;
  }

  describeExit(): string {
    const e = this.exit;
    if (!e) return 'still running';
    return e.signal ? `killed by signal ${e.signal}` : `exited with code ${e.code}`;
  }
}
