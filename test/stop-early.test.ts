/**
 * Ending a run before its last step without losing it: Ctrl-C (SIGINT) or SIGTERM to `alexnet launch`, or
 * `--stop-after DURATION`, end the run after the step in progress with a checkpoint of that step, and
 * `--resume` continues from there as if the run had never stopped.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { alexnetBin } from '@alexnet-mp/coordinator';
import { alexnet, alive, childPids } from './helpers.js';

const common = ['launch', '--preset', 'tiny', '--backend', 'webasm'];

interface Event {
  event: string;
  step?: number;
  loss?: number;
  reason?: string;
  checkpoint?: string | null;
}

function tempDir(t: { teardown(f: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-stop-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

const events = (runDir: string): Event[] => fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Event);
const losses = (runDir: string) => events(runDir).filter((e) => e.event === 'step').map((e) => [e.step, e.loss]);
const checkpointName = (step: number) => `step-${String(step).padStart(9, '0')}.safetensors`;

async function launchOk(t: { is(a: unknown, b: unknown, m?: string): void }, args: string[]): Promise<void> {
  const p = alexnet([...common, ...args]);
  t.is((await p.exited).code, 0, p.output());
}

/**
 * A tiny run signalled after its step 3: it must end after the step in progress with a checkpoint of it, no process
 * left. `everyProcess`: the signal goes to launch and its three children at once (pkill, a service manager stopping
 * the whole group). Returns its folder and last step.
 */
async function stopWith(t: ExecutionContext, signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP', everyProcess = false): Promise<{ dir: string; n: number }> {
  const dir = tempDir(t);
  // far more steps than will run, and no periodic checkpoint: the only checkpoint is the one the stop writes
  const p = alexnet([...common, '--batch', '8', '--steps', '100000', '--checkpoint-every', '100000', '--run-dir', dir]);
  await p.waitFor(/"event":"step","step":3,/, 120_000);
  p.proc.kill(signal);
  if (everyProcess) for (const pid of Object.values(childPids(p.stderr))) process.kill(pid, signal);
  t.is((await p.exited).code, { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 }[signal], p.output());
  t.regex(p.output(), new RegExp(`\\[launch\\] ${signal}: the coordinator ends the run after the step in progress`));
  if (everyProcess) t.regex(p.output(), new RegExp(`\\[worker0\\] alexnet worker 0: ${signal}: serving until the coordinator ends the run after the step in progress`));
  // the launcher's own lines are kept in the run folder, with their times
  t.regex(fs.readFileSync(path.join(dir, 'launch.log'), 'utf8'), new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${signal}: the coordinator ends the run`, 'm'));
  t.regex(p.output(), /\[launch\] all processes stopped/);
  // its last line too: written before launch exits
  t.regex(fs.readFileSync(path.join(dir, 'launch.log'), 'utf8'), /Z all processes stopped \([^\n]*\)\n$/);
  for (const [name, pid] of Object.entries(childPids(p.stderr))) t.false(alive(pid), `${name} (pid ${pid}) is gone`);

  const ev = events(dir);
  const steps = ev.filter((e) => e.event === 'step');
  const stopped = ev.find((e) => e.event === 'stopped');
  t.truthy(stopped, p.output());
  t.is(stopped!.reason, signal);
  const n = stopped!.step!;
  t.true(n >= 4);
  t.is(n, steps.length, 'every step logged is in the checkpoint');
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')), [checkpointName(n)]);
  t.is(path.basename(stopped!.checkpoint!), checkpointName(n));
  t.regex(p.output(), new RegExp(`stopped \\(${signal}\\) after step ${n} of 100000; checkpoint .*--resume`));
  return { dir, n };
}

test('SIGINT to launch ends the run after the step in progress with a checkpoint of it; --resume continues with the losses of the uninterrupted run', async (t) => {
  const { dir, n } = await stopWith(t, 'SIGINT');

  // continued: three more steps, equal to a run never stopped
  await launchOk(t, ['--steps', String(n + 3), '--resume', dir]);
  const straight = tempDir(t);
  await launchOk(t, ['--batch', '8', '--steps', String(n + 3), '--run-dir', straight]);
  const a = losses(straight);
  t.is(a.length, n + 3);
  t.deepEqual(losses(dir), a);
});

test('--stop-after ends the run at a step boundary once the time is up, with a checkpoint and exit code 0; a malformed duration is one line', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...common, '--batch', '8', '--steps', '100000', '--stop-after', '10s', '--run-dir', dir]);
  t.is((await p.exited).code, 0, p.output());
  const ev = events(dir);
  const steps = ev.filter((e) => e.event === 'step');
  const stopped = ev.find((e) => e.event === 'stopped');
  t.truthy(stopped, p.output());
  t.is(stopped!.reason, '--stop-after 10s');
  t.true(steps.length > 0 && steps.length < 100000);
  t.is(stopped!.step, steps.length);
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')), [checkpointName(steps.length)]);
  t.is(ev[ev.length - 1]!.event, 'done');
  t.regex(p.output(), /\[launch\] run stopped at its time limit/);

  for (const bad of ['5x', '0', '1d', '600h']) {
    const q = alexnet(['launch', '--stop-after', bad]);
    t.is((await q.exited).code, 2, q.output());
    t.regex(q.stderr.join('\n'), /^alexnet: --stop-after must be (a duration such as|longer than 0|at most 2000000 seconds)/m, bad);
    t.notRegex(q.output(), /\n\s+at /, 'no stack trace');
  }
});

test('SIGTERM to launch ends the run like SIGINT, after the step in progress with a checkpoint, and exits 143', async (t) => {
  await stopWith(t, 'SIGTERM');
});

test('SIGHUP to launch (its terminal closed) ends the run like SIGTERM, with a checkpoint, and exits 129', async (t) => {
  await stopWith(t, 'SIGHUP');
});

test('SIGTERM to every process of the run at once (pkill, a service manager) still ends it after the step in progress with a checkpoint', async (t) => {
  await stopWith(t, 'SIGTERM', true);
});

test('a run whose output nobody reads any more (the reader of its pipe gone) trains on to its end', async (t) => {
  const dir = tempDir(t);
  const p = spawn(process.execPath, [alexnetBin, ...common, '--batch', '8', '--steps', '60', '--run-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  // the first bytes read, then both pipes closed: every later write of launch fails with EPIPE
  await new Promise<void>((resolve) => p.stderr.once('data', () => resolve()));
  p.stdout.destroy();
  p.stderr.destroy();
  const code = await new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
  t.is(code, 0);
  const ev = events(dir);
  t.is(ev[ev.length - 1]!.event, 'done');
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')), [checkpointName(60)]);
  t.regex(fs.readFileSync(path.join(dir, 'launch.log'), 'utf8'), /run finished; stopping the workers/);
});

test('launch killed outright (SIGKILL): the coordinator ends the run after the step in progress with a checkpoint, the workers serve it, then all three exit; --resume continues', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...common, '--batch', '8', '--steps', '100000', '--checkpoint-every', '100000', '--run-dir', dir]);
  await p.waitFor(/"event":"step","step":3,/, 120_000);
  const pids = childPids(p.stderr);
  t.is(Object.keys(pids).length, 3, p.output());
  p.proc.kill('SIGKILL');
  await p.exited;
  // its children outlive it only to end the run: gone within the step and the checkpoint
  const deadline = Date.now() + 60_000;
  while (Object.values(pids).some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  for (const [name, pid] of Object.entries(pids)) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
  const ev = events(dir);
  const stopped = ev.find((e) => e.event === 'stopped');
  t.truthy(stopped, JSON.stringify(ev.slice(-3)));
  t.is(stopped!.reason, 'the launcher is gone (stdin closed)');
  const n = stopped!.step!;
  t.true(n >= 4);
  t.is(n, ev.filter((e) => e.event === 'step').length, 'every step logged is in the checkpoint');
  // the coordinator's lines after the launcher was gone are kept where launch kept the others
  const coordLog = fs.readFileSync(path.join(dir, 'coord.log'), 'utf8');
  t.regex(coordLog, /stdin closed without a word from launch \(the launcher is gone\): ending the run after the step in progress, with a checkpoint; alexnet launch --resume \S+ continues it/);
  t.regex(coordLog, new RegExp(`stopped \\(the launcher is gone \\(stdin closed\\)\\) after step ${n} of 100000`));
  t.notRegex(coordLog, /^\{"event":"step"/m, 'the step lines are in metrics.jsonl only');
  // written with both workers' parameters: they served after the launcher was gone
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')), [checkpointName(n)]);
  // and their lines from then on went where launch kept the others
  for (const tower of [0, 1]) {
    const workerLog = fs.readFileSync(path.join(dir, `worker${tower}.log`), 'utf8');
    t.regex(workerLog, new RegExp(`alexnet worker ${tower}: stdin closed without a word from launch \\(the launcher is gone\\): serving until the run lets this worker go`), `worker${tower}.log`);
    t.regex(workerLog, new RegExp(`alexnet worker ${tower}: stopping \\(stdin closed, `), `worker${tower}.log`);
  }
  // the run goes on from that checkpoint
  const q = alexnet([...common, '--steps', String(n + 2), '--resume', dir]);
  t.is((await q.exited).code, 0, q.output());
  t.deepEqual(events(dir).filter((e) => e.event === 'step').map((e) => e.step).slice(-2), [n, n + 1], "steps counted from 0: the two after the checkpoint");
});

test('a session stopped before training began leaves nothing in the run\'s record: summary still ends the last session as it ended', async (t) => {
  const dir = tempDir(t);
  await launchOk(t, ['--batch', '8', '--steps', '2', '--run-dir', dir]);
  const before = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
  // a coordinator resuming it on workers that are not there: stopped while it connects, before its run line
  const c = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--resume', dir, '--steps', '4']);
  await c.waitFor(/resuming from /, 60_000);
  c.proc.kill('SIGINT');
  t.is((await c.exited).code, 130, c.output());
  t.regex(c.output(), /alexnet coordinator: SIGINT: stopped before training began; the last checkpoint is step-000000002\.safetensors: /);
  t.is(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'), before, 'no stopped line that would read as the end of the session before');
  const s = alexnet(['summary', dir, '--json']);
  t.is((await s.exited).code, 0, s.output());
  const sessions = (JSON.parse(s.stdout.join('\n')) as { sessions: { end: string }[] }).sessions;
  t.deepEqual(sessions.map((x) => x.end), ['done']);
});

test("a coordinator or launch waiting for its ALEXNET_LOCK_OWNER's earlier process (on another host, still renewing the run folder's lock) stops at once on a signal, the holder's lock untouched", async (t) => {
  const dir = tempDir(t);
  const lockFile = path.join(dir, 'run.lock');
  const theirs = JSON.stringify({ host: 'alexnet-coordinator-old', pid: 1, since: '2026-12-07T00:00:00Z', command: 'alexnet coordinator', owner: 'job-uid-9' }) + '\n';
  fs.writeFileSync(lockFile, theirs);
  const c = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'tiny', '--run-dir', dir], { env: { ...process.env, ALEXNET_LOCK_OWNER: 'job-uid-9' } });
  await c.waitFor(/held by an earlier process of ALEXNET_LOCK_OWNER job-uid-9 \(alexnet coordinator, pid 1 on alexnet-coordinator-old, its lock renewed \d+ s ago\): waiting for it to end/, 60_000);
  // renewed as a live holder would: the wait goes on (until the signal)
  const now = new Date();
  fs.utimesSync(lockFile, now, now);
  const at = performance.now();
  c.proc.kill('SIGTERM');
  t.is((await c.exited).code, 143, c.output());
  t.true(performance.now() - at < 10_000, `stopped ${(performance.now() - at).toFixed(0)} ms after the signal`);
  t.true(c.stderr.includes('alexnet coordinator: SIGTERM before training started: stopping'), c.output());
  t.is(fs.readFileSync(lockFile, 'utf8'), theirs, "the holder's lock is as it was");
  t.deepEqual(fs.readdirSync(dir), ['run.lock'], 'no temporary lock file left');

  // launch waits the same way (the lock renewed again), and a Ctrl-C then stops it before it started any process
  const again = new Date();
  fs.utimesSync(lockFile, again, again);
  const l = alexnet([...common, '--batch', '8', '--steps', '2', '--run-dir', dir], { env: { ...process.env, ALEXNET_LOCK_OWNER: 'job-uid-9' } });
  await l.waitFor(/^\[launch\] \S+run\.lock: held by an earlier process of ALEXNET_LOCK_OWNER job-uid-9 .*: waiting for it to end/, 60_000);
  l.proc.kill('SIGINT');
  t.is((await l.exited).code, 130, l.output());
  t.true(l.stderr.includes('[launch] SIGINT before any process started: stopping'), l.output());
  t.notRegex(l.output(), /\[launch\] worker0: pid/, 'no process started');
  t.is(fs.readFileSync(lockFile, 'utf8'), theirs, "the holder's lock is as it was");
  t.deepEqual(fs.readdirSync(dir), ['run.lock'], 'no temporary lock file left');
});

/** Whether `chattr +i` makes a file here immutable (ext4 as root: appends to an open file then fail with EPERM). */
function canMakeImmutable(): boolean {
  const f = path.join(os.tmpdir(), `alexnet-chattr-probe-${process.pid}`);
  try {
    fs.writeFileSync(f, '');
    if (spawnSync('chattr', ['+i', f]).status !== 0) return false;
    spawnSync('chattr', ['-i', f]);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(f, { force: true });
  }
}

(canMakeImmutable() ? test : test.skip)('a log launch cannot write during training: the run ends after the step in progress with a checkpoint, the reason recorded, exit 2', async (t) => {
  const dir = tempDir(t);
  const coordLog = path.join(dir, 'coord.log');
  t.teardown(() => spawnSync('chattr', ['-i', coordLog]));
  // the checkpoint lines of every 4th step are what launch writes into coord.log during training
  const p = alexnet([...common, '--batch', '8', '--steps', '100000', '--checkpoint-every', '4', '--run-dir', dir]);
  await p.waitFor(/"event":"step","step":1,/, 120_000);
  t.is(spawnSync('chattr', ['+i', coordLog]).status, 0);
  t.is((await p.exited).code, 2, p.output());
  spawnSync('chattr', ['-i', coordLog]);
  const why = `cannot write ${coordLog}: operation not permitted (EPERM)`;
  t.true(p.stderr.includes(`[launch] ${why}: the coordinator ends the run after the step in progress (with a checkpoint when it writes them)`), p.output());
  const ev = events(dir);
  const stopped = ev.find((e) => e.event === 'stopped');
  t.truthy(stopped, JSON.stringify(ev.slice(-3)));
  t.is(stopped!.reason, why);
  const n = stopped!.step!;
  t.is(n, ev.filter((e) => e.event === 'step').length, 'every step logged is in the checkpoint');
  t.true(fs.readdirSync(path.join(dir, 'checkpoints')).includes(checkpointName(n)));
  t.regex(p.output(), new RegExp(`\\[launch\\] the coordinator ended the run \\(exited with code 2\\): ${why.replace(/[()]/g, '\\$&')}; stopping the workers; its last checkpoint is step ${n}: alexnet launch --resume \\S+ continues from it`));
  for (const [name, pid] of Object.entries(childPids(p.stderr))) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
});

test('a checkpoint that cannot be written ends the session as failed in the run\'s record', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...common, '--batch', '8', '--steps', '100000', '--checkpoint-every', '100000', '--run-dir', dir]);
  await p.waitFor(/"event":"step","step":2,/, 120_000);
  // checkpoints/ becomes a file: the checkpoint of the stop cannot be written
  fs.rmSync(path.join(dir, 'checkpoints'), { recursive: true, force: true });
  fs.writeFileSync(path.join(dir, 'checkpoints'), 'not a folder');
  p.proc.kill('SIGINT');
  t.is((await p.exited).code, 2, p.output());
  const last = events(dir).at(-1) as Event & { error?: string };
  t.is(last.event, 'failed', JSON.stringify(last));
  t.regex(last.error ?? '', /checkpoint/);
  const s = alexnet(['summary', dir, '--json']);
  t.is((await s.exited).code, 0, s.output());
  t.deepEqual((JSON.parse(s.stdout.join('\n')) as { sessions: { end: string }[] }).sessions.map((x) => x.end), ['failed']);
});

test('a coordinator killed under launch with --max-restarts 0: launch names the last checkpoint and the command that continues from it', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...common, '--batch', '8', '--steps', '100000', '--checkpoint-every', '3', '--max-restarts', '0', '--run-dir', dir]);
  await p.waitFor(/"event":"checkpoint","step":6,/, 120_000);
  process.kill(childPids(p.stderr).coord!, 'SIGKILL');
  t.is((await p.exited).code, 1, p.output());
  const m = /\[launch\] the coordinator killed by signal SIGKILL; its last checkpoint is step (\d+): alexnet launch --resume (\S+) continues from it/.exec(p.output());
  t.truthy(m, p.output());
  t.true(Number(m![1]) >= 6);
  t.is(m![2], dir);
});

// serial: ava runs it before this file's other tests, so its kernel compilation does not slow the --stop-after run
test.serial('a second Ctrl-C stops every process at once, without waiting for the step in progress', async (t) => {
  const dir = tempDir(t);
  // cifar steps take a second or more here: the second signal comes while the first waits for one
  const p = alexnet(['launch', '--preset', 'cifar', '--backend', 'webasm', '--batch', '16', '--steps', '100000', '--run-dir', dir]);
  t.teardown(() => {
    if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  });
  await p.waitFor(/"event":"step","step":1,/, 300_000);
  p.proc.kill('SIGINT');
  await p.waitFor(/\[launch\] SIGINT: the coordinator ends the run/, 10_000);
  p.proc.kill('SIGINT');
  t.is((await p.exited).code, 130, p.output());
  t.regex(p.output(), /\[launch\] SIGINT: stopping all processes/);
  // not the graceful end: that one writes a checkpoint of the step in progress and says so
  const checkpoints = path.join(dir, 'checkpoints');
  t.deepEqual(fs.existsSync(checkpoints) ? fs.readdirSync(checkpoints) : [], [], 'no checkpoint written');
  t.notRegex(p.output(), /stopped \(SIGINT\) after step \d+ of 100000; checkpoint/);
  // the coordinator says that it stopped at once, for the second SIGINT (launch tells it so before it closes its stdin)
  t.regex(p.output(), /\[coord\] alexnet coordinator: SIGINT: stopped at once, the step in progress abandoned; no checkpoint was written/);
  const stopped = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; reason?: string }).filter((e) => e.event === 'stopped');
  t.deepEqual(stopped.map((e) => e.reason), ['SIGINT'], 'the run log records the signal');
  const pids = childPids(p.stderr);
  t.deepEqual(Object.keys(pids).sort(), ['coord', 'worker0', 'worker1']);
  for (const [name, pid] of Object.entries(pids)) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
});
