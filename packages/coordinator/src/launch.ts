/**
 * `alexnet launch`: both workers and the coordinator as child processes on
 * this machine, their output prefixed ([worker0], [worker1], [coord]).
 *
 * - Workers listen on port 0: the OS picks free ports, which the launcher
 *   reads from their "listening on HOST:PORT" line (no race for a port).
 * - The run ends when the coordinator ends; then the workers get SIGTERM.
 * - A worker that exits before that is restarted on the same address, up to
 *   `maxRestarts` times in the run (the coordinator waits for it and resumes
 *   from the last checkpoint: recovery.ts); after that, or with 0, it is a
 *   failure: the launcher says which, how (exit code or signal) and its last
 *   stderr lines, stops the others, and exits 1.
 * - SIGINT/SIGTERM: the first is passed to the coordinator alone, which ends
 *   the run after the step in progress with a checkpoint (the workers stay up
 *   to give their parameters), then everything stops; a second stops every
 *   child at once. The children run in their own process group, so a
 *   terminal's Ctrl-C reaches the launcher only. A launcher killed outright
 *   closes their stdin without its "quit" line: the coordinator ends the run
 *   after the step in progress with a checkpoint, the workers serve until it
 *   lets them go, and then all exit, so none outlives it for long.
 * - A coordinator killed by a signal it does not handle (the out-of-memory killer, a crash) is started
 *   again with --resume RUN_DIR, counted with the workers' restarts (coordinator-restart.ts).
 * - The launcher exits only after every child has exited.
 */
import { Progress, progressBarWanted } from './progress.js';
import type { StepMetrics } from './coordinator.js';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withMallocTuning } from './malloc-tuning.js';
import { cpuWorkerArgs } from './launch-devices.js';
import { signalExitCode } from './signal-exit.js';
import { LAUNCH_LOG_ENV } from './cli/output-gone.js';
import { crashed, restartPlan } from './coordinator-restart.js';
import { Child, endLog, type Name } from './launch-child.js';
import { fileError, latestCheckpoint, makeDir, stepOfFile } from '@alexnet-mp/core';
import { fullDiskAdvice, lastLineOf } from './run-files.js';
import { courseBegunFrom, pinnedStep } from './resume.js';

export const alexnetBin = fileURLToPath(new URL('../../../bin/alexnet.mjs', import.meta.url));

export interface LaunchOptions {
  /** Arguments of each worker (without --tower/--port/--host/--device/--cpus, which the launcher adds). */
  readonly workerArgs: readonly string[];
  /** Node.js flags of the worker processes (launch-devices.ts workerNodeFlags); none by default. */
  readonly workerNodeArgs?: readonly string[];
  /** `--device` for worker 0 and worker 1 (launch-devices.ts); absent: none given. */
  readonly devices?: readonly [number, number] | null;
  /** `--cpus` for worker 0 and worker 1 (launch-devices.ts planCpus); absent: not pinned. */
  readonly cpus?: readonly [string, string] | null;
  /** Printed before the workers start, a line each: which GPU each worker gets, or the CPU threads (launch-devices.ts). */
  readonly deviceLines?: readonly string[];
  /** Arguments of the coordinator (without --workers). */
  readonly coordinatorArgs: readonly string[];
  readonly host: string;
  /** Fixed ports for the two workers; 0 lets the OS choose. */
  readonly ports: readonly [number, number];
  /** Each child's output is also written to <runDir>/<name>.log. */
  readonly runDir?: string;
  /** The credentials options a tool needs to call the run (shown with the inspection service's address). */
  readonly toolArgs?: readonly string[];
  /** Added to the children's environment (the run's shared token: not on a command line, where `ps` shows it). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long a worker may take to start listening. */
  readonly startTimeoutMs?: number;
  /** Times in a row a worker that dies, or a coordinator that crashes (coordinator-restart.ts), is started again (default 0: the run ends). */
  readonly maxRestarts?: number;
  /** The run's --stop-after in seconds: a coordinator started again gets what is left of it. */
  readonly stopAfterS?: number;
  /** A progress bar on stderr fed by the coordinator's step lines instead of printing them (default: when stdout and stderr are terminals and out/err are not given). */
  readonly bar?: boolean;
  /** Called once launch's own signal handlers are there (the caller's earlier ones can go then: launch-command.ts). */
  readonly onSignalsTaken?: () => void;
  readonly out?: (line: string) => void;
  readonly err?: (line: string) => void;
}


export interface LaunchResult {
  readonly code: number;
  readonly pids: Record<Name, number>;
}

/** Starts everything, waits for the run to end or fail, stops everything; resolves with the exit code to use. */
export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  // a failure the run's log holds from before this launch is not this launch's
  const startedAt = Date.now();
  const out = o.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const err = o.err ?? ((l: string) => process.stderr.write(l + '\n'));
  if (o.runDir) makeDir(o.runDir, 'the run directory');
  // the launcher's own lines (restarts, why the run ended) are also kept in RUN_DIR/launch.log, each with its time
  let launchLog = o.runDir ? fs.createWriteStream(path.join(o.runDir, 'launch.log'), { flags: 'a' }) : null;
  launchLog?.on('error', () => (launchLog = null));
  const say = (l: string) => {
    launchLog?.write(`${new Date().toISOString()} ${l}\n`);
    err(`[launch] ${l}`);
  };
  for (const l of o.deviceLines ?? []) say(l);
  // the first log file that cannot be written stops the run (exit code 2): during training the coordinator ends it
  // after the step in progress, with a checkpoint where one can be written (its own files are not launch's logs);
  // before, everything stops at once
  let logTrouble: string | null = null;
  let failLog: (e: LaunchFailure) => void = () => {};
  const logFailed = new Promise<never>((_, reject) => (failLog = reject));
  logFailed.catch(() => {});
  const onLogError = (file: string, e: Error): void => {
    if (logTrouble !== null) return;
    const what = fileError('write', file, e).message;
    const advice = fullDiskAdvice(e, path.dirname(file));
    if (training !== null && training === coordinator && training.alive() && signalled === null) {
      logTrouble = `${what}${advice}`;
      // a run already ending (a first signal) is let end as it was: its checkpoint is what the stop is for
      if (graceful !== null) {
        say(`${what}: the run is ending already`);
        return;
      }
      say(`${what}: the coordinator ends the run after the step in progress${o.runDir ? ' (with a checkpoint when it writes them)' : ''}`);
      // the reason goes into the run's own record (its stopped event), where summary finds it
      training.proc.stdin?.write(`end ${what}\n`);
      return;
    }
    failLog(new LaunchFailure(`${what}: stopping the run${advice}`, 2));
  };
  const children: Child[] = [];
  const listening = new Map<Name, (address: string) => void>();
  // on a terminal, a progress bar fed by the coordinator's step lines (which stay in RUN_DIR/metrics.jsonl); other lines print above it
  const barWanted = o.bar ?? (o.out === undefined && o.err === undefined && progressBarWanted());
  let progress: Progress | null = null;
  /** The coordinator's checkpoints so far (its step lines' checkpoint events): a checkpoint after a restart starts the count of restarts again. */
  let checkpointsSeen = 0;
  /** The workers now running (a restarted one replaces its tower's): a hung one is killed to be started again. */
  let workersNow: Child[] = [];
  /** The coordinator that has begun training (its run line printed): before, a signal stops it at once (early-stop.ts). */
  let training: Child | null = null;
  const onLine = (c: Child, line: string, stream: 'out' | 'err') => {
    if (c.name === 'coord' && stream === 'out' && line.startsWith('{"event":"checkpoint"')) checkpointsSeen++;
    if (c.name === 'coord' && stream === 'out' && line.startsWith('{"event":"run"')) training = c;
    if (c.name === 'coord' && stream === 'out' && line.startsWith('{"event":"worker_lost"')) killIfHung(line);
    if (barWanted && c.name === 'coord' && stream === 'out' && line.startsWith('{"event":')) {
      try {
        const m = JSON.parse(line) as { event: string; steps?: number; start_step?: number; batch?: number };
        if (m.event === 'run' && progress === null) progress = new Progress({ total: m.steps ?? 0, start: m.start_step ?? 0, batch: m.batch ?? 0, info: err, bar: true });
        if (m.event === 'step' && progress) progress.step(m as unknown as StepMetrics);
        // the JSON lines are in RUN_DIR/metrics.jsonl; the coordinator says the same on stderr in words
        return;
      } catch {
        // not ours: printed as it is
      }
    }
    // the coordinator's progress in words (it has no terminal): launch's own bar says the same
    if (progress && c.name === 'coord' && /^alexnet coordinator: step \d+ of \d+: /.test(line)) return;
    if (progress) progress.note(`[${c.name}] ${line}`);
    else (stream === 'out' ? out : err)(`[${c.name}] ${line}`);
    const m = / listening on (\S+)$/.exec(line);
    if (m && stream === 'out') listening.get(c.name)?.(m[1]!);
    if (c.name === 'coord' && /^alexnet coordinator: stopped \(--stop-after /.test(line)) stoppedEarly = true;
    const ui = c.name === 'coord' ? /: dashboard at (http:\/\/\S+)$/.exec(line) : null;
    if (ui) (progress ? (l: string) => progress!.note(l) : err)(`[launch] dashboard: ${ui[1]}`);
    const inspect = c.name === 'coord' ? /: inspection service \(alexnet\.v1\.Coordinator\) at (\S+): /.exec(line) : null;
    if (inspect) (progress ? (l: string) => progress!.note(l) : err)(`[launch] inspection service: ${inspect[1]} (alexnet inspect kernels|activations|predictions --coordinator ${inspect[1]}${o.toolArgs?.length ? ` ${o.toolArgs.join(' ')}` : ''})`);
  };
  // the coordinator lost a worker whose process still lives (stopped, deadlocked, its device hung): it would never
  // answer again, so it is killed, and restarted below like a worker that died
  const killIfHung = (line: string) => {
    let e: { tower?: number; pid?: number | null };
    try {
      e = JSON.parse(line) as { tower?: number; pid?: number | null };
    } catch {
      return;
    }
    const w = e.tower === 0 || e.tower === 1 ? workersNow[e.tower] : undefined;
    if (!w || !w.alive() || e.pid == null || w.pid !== e.pid) return;
    (progress ? (l: string) => progress!.note(l) : err)(`[launch] ${w.name} (pid ${w.pid}) does not answer though its process lives (hung): killing it, to start it again`);
    w.proc.kill('SIGKILL');
  };
  const deviceArgs = (t: number): string[] => [...(o.devices ? ['--device', String(o.devices[t])] : []), ...cpuWorkerArgs(t, null, o.cpus ?? null)];
  const start = (name: Name, args: string[]): Child => {
    const nodeArgs = name === 'coord' ? [] : (o.workerNodeArgs ?? []);
    // detached: a process group of its own, out of reach of the terminal's Ctrl-C (the launcher decides who stops when)
    // with glibc's malloc reusing big freed blocks rather than faulting in fresh pages each kernel call (malloc-tuning.ts)
    // a worker told where launch keeps its lines writes them there itself once launch is gone (worker-command.ts)
    const logEnv = name !== 'coord' && o.runDir !== undefined ? { [LAUNCH_LOG_ENV]: path.resolve(o.runDir, `${name}.log`) } : {};
    const proc = spawn(process.execPath, [...nodeArgs, alexnetBin, ...args, '--exit-with-stdin'], { stdio: ['pipe', 'pipe', 'pipe'], env: withMallocTuning({ ...process.env, ...o.env, ...logEnv }), detached: true });
    const c = new Child(name, proc, o.runDir, onLine, onLogError);
    children.push(c);
    say(`${name}: pid ${c.pid}`);
    return c;
  };

  let stopping: Promise<void> | null = null;
  const stopAll = (graceMs = 5000): Promise<void> => {
    stopping ??= Promise.all(children.map((c) => c.stop(graceMs))).then(() => undefined);
    return stopping;
  };
  const pids = () => Object.fromEntries(children.map((c) => [c.name, c.pid])) as Record<Name, number>;
  /** The launcher's result after a signal: its exit code as a shell reports it (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP). */
  const bySignal = (s: NodeJS.Signals): LaunchResult => ({ code: signalExitCode(s), pids: pids() });

  // a signal to the launcher: the coordinator ends the run gracefully; a second signal (or one before the coordinator runs) stops everything
  let signalled: NodeJS.Signals | null = null;
  let wakeOnSignal: () => void = () => {};
  const signalSeen = new Promise<void>((resolve) => (wakeOnSignal = resolve));
  let coordinator: Child | null = null;
  let stoppedEarly = false;
  let graceful: NodeJS.Signals | null = null;
  const onSignal = (s: NodeJS.Signals) => {
    if (signalled) return;
    if (graceful === null && coordinator?.alive()) {
      graceful = s;
      if (training === coordinator) say(`${s}: the coordinator ends the run after the step in progress (with a checkpoint when it writes them); ${s} again stops all processes at once`);
      else say(`${s}: training has not started: the coordinator stops now (a decoding under way keeps the images its journal recorded for the next run: the coordinator says how many)`);
      // asked on its stdin rather than by a signal: a coordinator that got the same signal itself (pkill, a service
      // manager stopping the whole group) counts it once, not as a second signal that stops it at once
      coordinator.proc.stdin?.write(`stop ${s}\n`);
      return;
    }
    signalled = s;
    say(`${s}: stopping all processes`);
    // the coordinator records the signal as the reason it stopped (it sees its stdin close next)
    if (coordinator?.alive()) coordinator.proc.stdin?.write(`now ${s}\n`);
    wakeOnSignal();
  };
  // SIGHUP: the terminal closed (a dropped SSH session): the run ends as for SIGTERM, with its checkpoint
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  o.onSignalsTaken?.();

  const coordinatorFailure = (c: Child): string =>
    `the coordinator (pid ${c.pid}) ${c.describeExit()}${stderrLines(c, 4)}`;
  const workerFailure = (w: Child): string => {
    return `${w.name} (tower ${w.name.slice(-1)}, pid ${w.pid}) ${w.describeExit()}${stderrLines(w)}`;
  };

  try {
    // ---- workers
    const workers = (workersNow = ([0, 1] as const).map((t) =>
      start(`worker${t}` as Name, ['worker', '--tower', String(t), '--host', o.host, '--port', String(o.ports[t]), ...deviceArgs(t), ...o.workerArgs]),
    ));
    const addresses = await Promise.race([
      Promise.all(workers.map((w) => new Promise<string>((resolve) => listening.set(w.name, resolve)))),
      Promise.race(workers.map((w) => w.exited.then(() => w))).then((w) => {
        throw new LaunchFailure(`${workerFailure(w)}\n  before it was listening`, w.exit?.code === 2 ? 2 : 1);
      }),
      signalSeen.then(() => null),
      logFailed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new LaunchFailure(`the workers did not start listening within ${((o.startTimeoutMs ?? 120_000) / 1000).toFixed(0)} s`, 1)), o.startTimeoutMs ?? 120_000).unref()),
    ]);
    if (!addresses) return bySignal(signalled!);
    say(`workers listening on ${addresses.join(' and ')}`);

    // ---- coordinator
    let coord = start('coord', ['coordinator', '--workers', addresses.join(','), ...o.coordinatorArgs]);
    coordinator = coord;
    const coordStartedAt = performance.now();
    const gracefulEnd = (s: NodeJS.Signals): LaunchResult => {
      say(`the coordinator ended the run (${s}, ${coord.describeExit()}); stopping the workers`);
      return bySignal(s);
    };
    let firstWorkerExit = Promise.race(workers.map((w) => w.exited.then(() => w)));
    let ended: 'coord' | 'worker' | 'signal';
    // restarts in a row: a checkpoint written since the last restart starts the count again (the coordinator counts the same way)
    let restarts = 0;
    let checkpointsAtRestart = 0;
    for (; ; restarts++) {
      ended = await Promise.race([coord.exited.then(() => 'coord' as const), firstWorkerExit.then(() => 'worker' as const), signalSeen.then(() => 'signal' as const), logFailed]);
      if (restarts > 0 && checkpointsSeen > checkpointsAtRestart) restarts = 0;
      checkpointsAtRestart = checkpointsSeen;
      // a run that is ending (a signal, a log that cannot be written) is not started again
      if (ended === 'coord' && crashed(coord.exit) && graceful === null && logTrouble === null && o.runDir !== undefined && restarts < (o.maxRestarts ?? 0)) {
        // killed from outside or crashed: its workers are alive (a dead one is the likelier cause: not this case)
        await Promise.race([firstWorkerExit, new Promise((r) => setTimeout(r, 500))]);
        if (workers.every((w) => w.alive())) {
          const last = latestCheckpoint(path.join(o.runDir, 'checkpoints'));
          const plan = restartPlan({
            args: o.coordinatorArgs,
            runDir: o.runDir,
            checkpointStep: last ? stepOfFile(last) : null,
            stopAfterLeftS: o.stopAfterS === undefined ? null : o.stopAfterS - (performance.now() - coordStartedAt) / 1000,
            pinnedStep: pinnedNotBegun(o.runDir),
          });
          say(coordinatorFailure(coord));
          if ('refused' in plan) {
            say(`not restarting the coordinator: ${plan.refused}; ${resumeHint(o.runDir, startedAt)}`);
            return { code: 1, pids: pids() };
          }
          say(`restarting the coordinator from ${plan.from} (restart ${restarts + 1} of ${o.maxRestarts})`);
          coord = start('coord', ['coordinator', '--workers', addresses.join(','), ...plan.args]);
          coordinator = coord;
          continue;
        }
      }
      if (ended !== 'worker' || restarts >= (o.maxRestarts ?? 0) || !coord.alive() || logTrouble !== null) break;
      // a lost worker: the same tower again on the same address; the coordinator waits for it and resumes (recovery.ts)
      const w = await firstWorkerExit;
      const t = workers.indexOf(w);
      const port = addresses[t]!.slice(addresses[t]!.lastIndexOf(':') + 1);
      say(workerFailure(w));
      say(`restarting ${w.name} on ${addresses[t]} (restart ${restarts + 1} of ${o.maxRestarts})`);
      const again = start(w.name, ['worker', '--tower', String(t), '--host', o.host, '--port', port, ...deviceArgs(t), ...o.workerArgs]);
      workers[t] = again;
      const restartedAt = performance.now();
      const up = await Promise.race([
        new Promise<'up'>((resolve) => listening.set(again.name, () => resolve('up'))),
        again.exited.then(() => 'exited' as const),
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), o.startTimeoutMs ?? 120_000).unref()),
        signalSeen.then(() => 'signal' as const),
        coord.exited.then(() => 'coord' as const),
        logFailed,
      ]);
      if (graceful !== null && !coord.alive()) return gracefulEnd(graceful);
      if (signalled) return bySignal(signalled);
      if (up !== 'up') {
        const waited = `${((performance.now() - restartedAt) / 1000).toFixed(1)} s`;
        if (up === 'exited') say(workerFailure(again));
        else if (up === 'coord') say(`the coordinator ${coord.describeExit()} ${waited} after ${again.name} was restarted, before it was listening`);
        else say(`${again.name} did not start listening again within ${waited}`);
        say(`stopping the run: ${again.name} could not be restarted${o.runDir ? `; ${resumeHint(o.runDir, startedAt)}` : ''}`);
        return { code: 1, pids: pids() };
      }
      firstWorkerExit = Promise.race(workers.map((w) => w.exited.then(() => w)));
    }
    (progress as Progress | null)?.stop();
    if (ended === 'signal') return bySignal(signalled!);
    // the run ended for a log launch could not write (above)
    if (logTrouble !== null) {
      // however it ended (a worker lost meanwhile: the coordinator ends the run for that too, in seconds)
      if (coord.alive()) await Promise.race([coord.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      for (const w of workers.filter((x) => !x.alive())) say(workerFailure(w));
      say(`the coordinator ended the run (${coord.describeExit()}): ${logTrouble}; stopping the workers${o.runDir ? `; ${resumeHint(o.runDir, startedAt)}` : ''}`);
      return { code: 2, pids: pids() };
    }
    // a stop asked for and done (130/143; 0 when the run ended on its own meanwhile); any other exit is a failure, below
    if (graceful !== null && ended === 'coord' && [0, 129, 130, 143].includes(coord.exit!.code ?? -1)) return gracefulEnd(graceful);
    if (ended === 'coord' && coord.exit!.code === 0 && workers.every((w) => w.alive())) {
      say(stoppedEarly ? `run stopped at its time limit (--stop-after${o.runDir ? `; alexnet launch --resume ${o.runDir} continues it` : ': without --run-dir nothing was kept to continue from'}); stopping the workers` : 'run finished; stopping the workers');
      return { code: 0, pids: pids() };
    }
    // something failed: give a dying worker a moment to be seen, it is the likely cause
    await Promise.race([firstWorkerExit, new Promise((r) => setTimeout(r, 500))]);
    const dead = workers.filter((w) => !w.alive());
    if (dead.length > 0) {
      // the coordinator sees the lost worker too and ends the run itself, its `failed` event naming the worker
      // (closing its stdin first would record a stop instead); a few seconds at most
      if (coord.alive()) await Promise.race([coord.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      for (const w of dead) say(`${workerFailure(w)}`);
      say(`stopping the run: ${dead.map((w) => w.name).join(' and ')} died${o.runDir ? `; ${resumeHint(o.runDir, startedAt)}` : ''}`);
      return { code: 1, pids: pids() };
    }
    const notRestarted = crashed(coord.exit) && (o.maxRestarts ?? 0) > 0 ? '; not restarted: without --run-dir it wrote no checkpoint to go on from' : '';
    say(`the coordinator ${coord.describeExit()}${o.runDir ? `; ${resumeHint(o.runDir, startedAt)}` : notRestarted}`);
    return { code: coord.exit!.code && coord.exit!.code > 0 ? coord.exit!.code : 1, pids: pids() };
  } catch (e) {
    if (e instanceof LaunchFailure) {
      say(e.message);
      return { code: e.code, pids: pids() };
    }
    throw e;
  } finally {
    (progress as Progress | null)?.stop();
    await stopAll();
    for (const s of signals) process.off(s, onSignal);
    say(`all processes stopped (${describeEnds(children)})`);
    // on the disk before the caller exits
    await endLog(launchLog);
  }
}

/**
 * How each process ended, the last of each name (the one stopped now), with how its earlier runs ended when it was
 * restarted: "worker1 exited with code 0 (restarted after: killed by signal SIGKILL)".
 */
export function describeEnds(children: readonly { name: string; describeExit(): string }[]): string {
  const last = new Map<string, { describeExit(): string }>();
  const earlier = new Map<string, string[]>();
  for (const c of children) {
    const before = last.get(c.name);
    if (before) earlier.set(c.name, [...(earlier.get(c.name) ?? []), before.describeExit()]);
    last.set(c.name, c);
  }
  return [...last].map(([name, c]) => `${name} ${c.describeExit()}${earlier.has(name) ? ` (restarted after: ${earlier.get(name)!.join(', then ')})` : ''}`).join(', ');
}

/** What a run that ended badly can continue from: its last checkpoint and the command. */
function resumeHint(runDir: string, since: number): string {
  // a diverged run: the coordinator named the checkpoint from before the loss rose (its last line), not the latest
  const failed = lastFailedEvent(runDir, since);
  if (failed && 'resume_from' in failed) {
    return failed.resume_from ? `it diverged: alexnet launch --resume ${failed.resume_from} with a lower --lr continues from the last checkpoint before its loss rose` : 'it diverged before any checkpoint of calm training: start again with a lower --lr';
  }
  const last = latestCheckpoint(path.join(runDir, 'checkpoints'));
  const step = last ? stepOfFile(last) : null;
  return last ? `its last checkpoint is step ${step}: alexnet launch --resume ${runDir} continues from it` : 'it wrote no checkpoint';
}

/** The step `--resume RUN_DIR/checkpoints/step-N` chose while its course has not begun (resume.ts), else null. */
function pinnedNotBegun(runDir: string): number | null {
  const step = pinnedStep(runDir);
  return step !== undefined && !courseBegunFrom(runDir, step) ? step : null;
}

/** The run's last metrics event when it is a `failed` one written since `since` (ms), else null. */
function lastFailedEvent(runDir: string, since: number): { resume_from?: string | null } | null {
  const line = lastLineOf(path.join(runDir, 'metrics.jsonl'));
  try {
    const e = JSON.parse(line ?? 'null') as { event?: string; resume_from?: string | null; time?: string } | null;
    return e?.event === 'failed' && e.time !== undefined && Date.parse(e.time) >= since ? e : null;
  } catch {
    return null; // a torn last line: no failed event was written whole
  }
}

/** A child's last non-empty stderr lines (at most `most`), indented under the line that names it. */
function stderrLines(c: Child, most = Infinity): string {
  const lines = c.stderrTail.filter((l) => l.trim() !== '');
  return lines.length > 0 ? `; its last stderr lines:\n${lines.slice(-Math.min(most, lines.length)).map((l) => `    ${l}`).join('\n')}` : ' (nothing on stderr)';
}

class LaunchFailure extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}
