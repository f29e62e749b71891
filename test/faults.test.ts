/**
 * Faults (issue 6) with real processes, tiny preset: a worker killed or hung mid-step, restarted by launch or
 * by hand, the coordinator killed and resumed, a torn metrics line, a full disk while checkpointing, a loss
 * that diverges. After a restart the losses of every step equal those of an uninterrupted run.
 * Serial: the kills are timed against a running training, and two cores are shared.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeCheckpoint, encodeCheckpoint, getPreset, initTowerParams, listCheckpoints } from '@alexnet-mp/core';
import { WorkerClient } from '@alexnet-mp/worker';
import { firstNonFinite } from '../packages/coordinator/src/divergence.js';
import { alexnet, alive, startWorker, type Proc } from './helpers.js';
import { reservedPort } from './ports.js';

const spec = getPreset('tiny');
const STEPS = 30;
const run = (steps = STEPS) => ['--preset', 'tiny', '--batch', '8', '--steps', String(steps)];
const launchArgs = ['launch', ...run(), '--backend', 'webasm'];

interface Event {
  event: string;
  step?: number;
  loss?: number;
  from_step?: number;
  restart?: number;
  checkpoint?: string | null;
  tower?: number;
  error?: string;
  dropped_bytes?: number;
  file?: string;
}

function tempDir(t: ExecutionContext, prefix = 'alexnet-faults-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Every line of RUN_DIR/metrics.jsonl, parsed (a line that does not parse fails the test). */
const events = (runDir: string): Event[] => fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Event);

/** The checkpoint event logged last before the first restart: what that restart must continue from. */
function checkpointBeforeRestart(evs: readonly Event[]): Event | undefined {
  return evs.slice(0, evs.findIndex((e) => e.event === 'restart')).filter((e) => e.event === 'checkpoint').at(-1);
}

/** Step -> loss, the last time each step was logged (after a restart the steps from the checkpoint on are done again). */
function lossesByStep(evs: Event[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of evs) if (e.event === 'step') m.set(e.step!, e.loss!);
  return m;
}

/** The uninterrupted run's losses, computed once for the file. */
let reference: Promise<Map<number, number>> | null = null;
function referenceLosses(t: ExecutionContext): Promise<Map<number, number>> {
  reference ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-faults-ref-'));
    try {
      const p = alexnet([...launchArgs, '--run-dir', dir]);
      const { code } = await p.exited;
      if (code !== 0) throw new Error(`the reference run failed:\n${p.output()}`);
      return lossesByStep(events(dir));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })();
  return reference.then((r) => {
    t.is(r.size, STEPS);
    return r;
  });
}

async function sameLossesAsReference(t: ExecutionContext, runDir: string): Promise<void> {
  const ref = await referenceLosses(t);
  const got = lossesByStep(events(runDir));
  t.deepEqual([...got.entries()].sort((a, b) => a[0] - b[0]), [...ref.entries()].sort((a, b) => a[0] - b[0]), 'every loss equals the uninterrupted run');
}

function childPids(lines: string[]): Map<string, number[]> {
  const pids = new Map<string, number[]>();
  for (const l of lines) {
    const m = /^\[launch\] (worker0|worker1|coord): pid (\d+)$/.exec(l);
    if (m) pids.set(m[1]!, [...(pids.get(m[1]!) ?? []), Number(m[2])]);
  }
  return pids;
}

function killOnTeardown(t: ExecutionContext, p: Proc): void {
  t.teardown(async () => {
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      p.proc.kill('SIGCONT');
      p.proc.kill('SIGKILL');
      await p.exited;
    }
  });
}

const stepLine = (n: number) => new RegExp(`"event":"step","step":${n},`);
const noTempFiles = (dir: string): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => /\.tmp$/.test(f));

/** Two workers on ports from below the ephemeral range (test/ports.ts): a worker killed here is started again on its port. */
async function twoWorkers(t: ExecutionContext, extra0: string[] = []): Promise<[{ p: Proc; address: string }, { p: Proc; address: string }]> {
  const [p0, p1] = await twoPorts();
  return Promise.all([startWorker(t, 0, ['--max-batch', '8', '--port', String(p0), ...extra0]), startWorker(t, 1, ['--max-batch', '8', '--port', String(p1)])]);
}

async function twoPorts(): Promise<[number, number]> {
  const p0 = await reservedPort();
  let p1 = await reservedPort();
  while (p1 === p0) p1 = await reservedPort();
  return [p0, p1];
}

/** launch's --ports for a run whose workers are killed and started again on their ports by launch. */
const launchPorts = async () => ['--ports', (await twoPorts()).join(',')];

/** Worker 0 started again on `address` (as an operator would), the coordinator `c` run to its end (exit 0): the run's restart events. */
async function backOnItsAddress(t: ExecutionContext, address: string, c: Proc, dir: string): Promise<Event[]> {
  const port = address.slice(address.lastIndexOf(':') + 1);
  const again = alexnet(['worker', '--tower', '0', '--port', port, '--backend', 'webasm', '--max-batch', '8']);
  killOnTeardown(t, again);
  const { code } = await c.exited;
  t.is(code, 0, c.output());
  return events(dir).filter((e) => e.event === 'restart');
}

/**
 * A run on two workers (checkpoints every 5 steps, --wait-for-workers 180: a restarted worker may take minutes to listen on a loaded machine) whose worker `lost` is killed after step
 * 8 and started again on its port with `args` (a mistake: another --tower, another --preset).
 */
async function restartedWrongly(t: ExecutionContext, lost: 0 | 1, args: string[]) {
  const dir = tempDir(t);
  const [w0, w1] = await twoWorkers(t);
  const c = coordinator([w0.address, w1.address], ['--checkpoint-every', '5', '--run-dir', dir, '--wait-for-workers', '180']);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(8), 120_000);
  const gone = [w0, w1][lost]!;
  gone.p.proc.kill('SIGKILL');
  await c.waitFor(new RegExp(`waiting for worker ${lost} \\(tower ${lost}\\) at \\S+ to come back`), 60_000);
  const port = gone.address.slice(gone.address.lastIndexOf(':') + 1);
  const wrong = alexnet(['worker', ...args, '--port', port, '--backend', 'webasm', '--max-batch', '8']);
  killOnTeardown(t, wrong);
  return { dir, c, w0, w1, port, wrong };
}

const coordinator = (workers: readonly string[], extra: string[], steps = STEPS): Proc => alexnet(['coordinator', '--workers', workers.join(','), ...run(steps), ...extra]);

test.serial('a worker killed mid-step is noticed at once, the survivor is told to abandon the step, and with --max-restarts 0 the run ends naming it', async (t) => {
  const [w0, w1] = await twoWorkers(t);
  const c = coordinator([w0.address, w1.address], ['--max-restarts', '0'], 100_000);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(5), 120_000);
  const killedAt = Date.now();
  w1.p.proc.kill('SIGKILL');
  const { code } = await c.exited;
  const took = Date.now() - killedAt;
  t.log(`the coordinator exited ${took} ms after the kill`);
  t.is(code, 1, c.output());
  // seconds, not the exchange's deadline of minutes (a loaded machine adds a few)
  t.true(took < 20_000, 'noticed within seconds');
  t.regex(c.stderr.join('\n'), /worker [01] \(tower [01]\) at \S+ failed at step \d+: UNAVAILABLE/);
  t.notRegex(c.output(), /internal error|\n\s+at /, 'no stack trace');
  // the survivor: its step was cancelled (or failed sending to its dead peer), it is not waiting for its peer any more
  await w0.p.waitFor(/step \d+ failed: /, 10_000);
  const client = new WorkerClient(w0.address, 1 << 20);
  t.teardown(() => client.close());
  const status = await client.status({ timeoutMs: 5000 });
  t.is(status.state, 'FAILED', `worker 0 is ${status.state}, last error: ${status.last_error}`);
  t.log(`worker 0 after the kill: ${status.last_error}`);
});

test.serial('a hung worker (SIGSTOP) runs past the step deadline: the run ends within the deadline, not after the 10 min exchange timeout', async (t) => {
  const [w0, w1] = await twoWorkers(t);
  t.teardown(() => {
    w1.p.proc.kill('SIGCONT');
  });
  const c = coordinator([w0.address, w1.address], ['--max-restarts', '0', '--step-deadline', '2'], 100_000);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(5), 120_000);
  const stoppedAt = Date.now();
  w1.p.proc.kill('SIGSTOP');
  const { code } = await c.exited;
  const took = Date.now() - stoppedAt;
  t.log(`the coordinator gave up ${took} ms after the worker stopped: ${c.stderr.filter((l) => /DEADLINE_EXCEEDED/.test(l)).join(' | ')}`);
  t.is(code, 1, c.output());
  t.regex(c.stderr.join('\n'), /failed at step \d+: DEADLINE_EXCEEDED/);
  // the stopped worker is the one named lost, though worker 0's step timed out too (waiting for it)
  t.regex(c.stderr.join('\n'), /worker 1 \(tower 1\) at \S+ (does not answer \(hung\?\): worker 0's step ran past its deadline|failed at step \d+: DEADLINE_EXCEEDED)/);
  t.notRegex(c.stderr.join('\n'), /^alexnet coordinator: worker 0 \(tower 0\) at \S+ failed at step/m, c.output());
  // the deadline is the larger of 2 s and ten times the slowest step (twice that for a queued step): on a loaded
  // machine a few seconds more; the point is that it is not the exchange's 10-minute timeout
  t.true(took < 60_000, 'within the step deadline, not the exchange timeout');
});

test.serial('launch restarts a killed worker and the run resumes from its last checkpoint: every loss equals the uninterrupted run', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...launchArgs, ...(await launchPorts()), '--checkpoint-every', '5', '--run-dir', dir]);
  killOnTeardown(t, p);
  await p.waitFor(stepLine(12), 120_000);
  const first = childPids(p.stderr).get('worker1')![0]!;
  process.kill(first, 'SIGKILL');
  const { code } = await p.exited;
  t.is(code, 0, p.output());
  const err = p.stderr.join('\n');
  t.regex(err, /\[launch\] worker1 \(tower 1, pid \d+\) killed by signal SIGKILL/);
  t.regex(err, /\[launch\] restarting worker1 on 127\.0\.0\.1:\d+ \(restart 1 of 3\)/);
  const evs = events(dir);
  const restarts = evs.filter((e) => e.event === 'restart');
  t.is(restarts.length, 1);
  // it continued from the checkpoint written last before the failure
  const before = checkpointBeforeRestart(evs);
  t.is(restarts[0]!.from_step, before?.step);
  t.is(restarts[0]!.checkpoint, before?.file);
  t.log(`killed after step 12; resumed from step ${restarts[0]!.from_step}`);
  await sameLossesAsReference(t, dir);
  for (const [name, pids] of childPids(p.stderr)) for (const pid of pids) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
});

test.serial('--max-restarts counts restarts in a row: with 1, a run survives a second lost worker once it wrote a checkpoint after the first', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...launchArgs, ...(await launchPorts()), '--checkpoint-every', '5', '--max-restarts', '1', '--run-dir', dir]);
  killOnTeardown(t, p);
  await p.waitFor(stepLine(7), 120_000);
  process.kill(childPids(p.stderr).get('worker1')![0]!, 'SIGKILL');
  // restarted from step 5; a checkpoint past it (step 10), then the same worker lost again
  await p.waitFor(/"event":"checkpoint","step":10,/, 120_000);
  await p.waitFor(/counts from 0 again/, 10_000);
  process.kill(childPids(p.stderr).get('worker1')![1]!, 'SIGKILL');
  const { code } = await p.exited;
  t.is(code, 0, p.output());
  const restarts = events(dir).filter((e) => e.event === 'restart');
  t.deepEqual(restarts.map((e) => e.restart), [1, 1], 'each the first of its row');
  t.is((p.stderr.join('\n').match(/\[launch\] restarting worker1 on 127\.0\.0\.1:\d+ \(restart 1 of 1\)/g) ?? []).length, 2);
  await sameLossesAsReference(t, dir);
});

test.serial('launch: a worker killed before the first checkpoint restarts the run from step 0, and says so', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...launchArgs, ...(await launchPorts()), '--run-dir', dir]);
  killOnTeardown(t, p);
  await p.waitFor(stepLine(3), 120_000);
  process.kill(childPids(p.stderr).get('worker0')![0]!, 'SIGKILL');
  const { code } = await p.exited;
  t.is(code, 0, p.output());
  t.regex(p.stderr.join('\n'), /no checkpoint of this run yet: restarting the run from step 0/);
  const restarts = events(dir).filter((e) => e.event === 'restart');
  t.deepEqual(restarts.map((r) => [r.from_step, r.checkpoint, r.tower]), [[0, null, restarts[0]!.tower]]);
  await sameLossesAsReference(t, dir);
});

test.serial('launch starts a coordinator killed outright (as by the out-of-memory killer) again with --resume: every loss equals the uninterrupted run', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...launchArgs, '--checkpoint-every', '5', '--run-dir', dir]);
  killOnTeardown(t, p);
  await p.waitFor(stepLine(12), 120_000);
  process.kill(childPids(p.stderr).get('coord')![0]!, 'SIGKILL');
  const { code } = await p.exited;
  t.is(code, 0, p.output());
  const m = /\[launch\] restarting the coordinator from its last checkpoint, step (\d+) \(restart 1 of 3\)/.exec(p.stderr.join('\n'));
  t.truthy(m, p.output());
  t.regex(p.stderr.join('\n'), /\[launch\] the coordinator \(pid \d+\) killed by signal SIGKILL/);
  const runs = events(dir).filter((e) => e.event === 'run') as (Event & { resumed_from?: string | null })[];
  t.is(runs.length, 2);
  t.is(runs[1]!.resumed_from, path.join(dir, 'checkpoints', `step-${m![1]!.padStart(9, '0')}.safetensors`));
  t.log(`killed after step 12; resumed from step ${m![1]}`);
  await sameLossesAsReference(t, dir);
  t.regex(fs.readFileSync(path.join(dir, 'launch.log'), 'utf8'), /restarting the coordinator/);
  const pids = childPids(p.stderr);
  t.is(pids.get('coord')!.length, 2);
  for (const [name, list] of pids) for (const pid of list) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
});

test.serial('launch: a coordinator killed before the run\'s first checkpoint starts the run again from step 0', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...launchArgs, '--run-dir', dir]);
  killOnTeardown(t, p);
  await p.waitFor(stepLine(3), 120_000);
  process.kill(childPids(p.stderr).get('coord')![0]!, 'SIGKILL');
  const { code } = await p.exited;
  t.is(code, 0, p.output());
  t.regex(p.stderr.join('\n'), /\[launch\] restarting the coordinator from step 0 \(no checkpoint of this run yet\) \(restart 1 of 3\)/);
  await sameLossesAsReference(t, dir);
});

test.serial('separately started: the coordinator waits for a killed worker to come back on its address, then resumes from the last checkpoint', async (t) => {
  const dir = tempDir(t);
  const [w0, w1] = await twoWorkers(t);
  const c = coordinator([w0.address, w1.address], ['--checkpoint-every', '5', '--run-dir', dir, '--wait-for-workers', '180']);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(12), 120_000);
  w0.p.proc.kill('SIGKILL');
  await c.waitFor(/waiting for worker 0 \(tower 0\) at \S+ to come back \(\d+ s left of --wait-for-workers\)/, 60_000);
  // the operator starts it again on the same port
  const restarts = await backOnItsAddress(t, w0.address, c, dir);
  t.is(restarts.length, 1);
  // from the checkpoint written last before the failure (step 10, or a later one when the kill came late)
  t.true(restarts[0]!.from_step! >= 10, `resumed from step ${restarts[0]!.from_step}`);
  t.is(restarts[0]!.from_step, checkpointBeforeRestart(events(dir))?.step);
  await sameLossesAsReference(t, dir);
});

test.serial('a worker asked to stop with --drain: its coordinator writes a checkpoint after the step, the worker goes once it is written, and the run continues from it when the worker is back, losing no step', async (t) => {
  const dir = tempDir(t);
  const [w0, w1] = await twoWorkers(t, ['--drain']);
  const c = coordinator([w0.address, w1.address], ['--checkpoint-every', '1000', '--run-dir', dir, '--wait-for-workers', '180']);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(8), 120_000);
  w0.p.proc.kill('SIGTERM');
  await w0.p.waitFor(/SIGTERM: draining: serving until a checkpoint with this tower's parameters is written/);
  const asked = await c.waitFor(/worker 0 \(tower 0\) at \S+ is draining \(asked to stop\): a checkpoint after step (\d+), which it waits for before it goes/, 20_000);
  t.is((await w0.p.exited).code, 0, w0.p.output());
  t.regex(w0.p.output(), /stopping \(SIGTERM, drained: a checkpoint with this tower's parameters is written\)/);
  // the operator (a StatefulSet) starts it again on the same address
  const restarts = await backOnItsAddress(t, w0.address, c, dir);
  t.is(restarts.length, 1, c.output());
  // the checkpoint asked for, not the start of the run: no step is lost (the one after it may be done twice)
  const checkpointed = events(dir).filter((e) => e.event === 'checkpoint').map((e) => e.step);
  t.true(checkpointed.includes(restarts[0]!.from_step), `resumed from step ${restarts[0]!.from_step}; checkpoints ${checkpointed.join(', ')}`);
  // the step the coordinator named is the checkpoint's (a step queued behind the one whose reply said so comes first)
  t.is(restarts[0]!.from_step, Number(asked[1]), `resumed from step ${restarts[0]!.from_step}, drained after step ${asked[1]}`);
  await sameLossesAsReference(t, dir);
});

test.serial('a coordinator asked to stop (SIGTERM) that loses a worker meanwhile ends at once, not after --wait-for-workers', async (t) => {
  const dir = tempDir(t);
  const [w0, w1] = await twoWorkers(t);
  const c = coordinator([w0.address, w1.address], ['--checkpoint-every', '5', '--run-dir', dir, '--wait-for-workers', '600'], 100_000);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(6), 120_000);
  // a service manager stopping everything: the coordinator's SIGTERM, and a worker that goes at once
  const at = Date.now();
  c.proc.kill('SIGTERM');
  w1.p.proc.kill('SIGKILL');
  const { code } = await c.exited;
  const took = Date.now() - at;
  t.log(`the coordinator exited ${took} ms after the SIGTERM, code ${code}`);
  t.true(took < 60_000, c.output());
  t.notRegex(c.output(), /waiting for worker \d \(tower \d\) at \S+ to come back/);
  // it either ended the run with its checkpoint before the loss showed, or says why it did not wait
  t.true(code === 143 || /not waited for: the run was asked to stop, SIGTERM/.test(c.output()), c.output());
});

test.serial('a run whose --stop-after time comes while it waits for a lost worker ends then, not after --wait-for-workers', async (t) => {
  const dir = tempDir(t);
  const [w0, w1] = await twoWorkers(t);
  const started = Date.now();
  const c = coordinator([w0.address, w1.address], ['--checkpoint-every', '5', '--run-dir', dir, '--wait-for-workers', '600', '--stop-after', '20s'], 100_000);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(6), 120_000);
  w1.p.proc.kill('SIGKILL');
  await c.waitFor(/waiting for both workers/, 20_000);
  const { code } = await c.exited;
  const took = (Date.now() - started) / 1000;
  t.log(`the coordinator exited ${took.toFixed(1)} s after it started, code ${code}`);
  t.true(took < 45, c.output());
  t.regex(c.output(), /worker 1 \(tower 1\) at \S+ is not back \(not waited for: the run was asked to stop, --stop-after 20s\)/);
  t.not(code, 0, 'the run did not reach its time limit whole: its last checkpoint is where it goes on');
});

test.serial('separately started: a coordinator stopped with Ctrl-C names the command that continues its run, the coordinator with its workers', async (t) => {
  const dir = tempDir(t);
  const [w0, w1] = await twoWorkers(t);
  const workers = `${w0.address},${w1.address}`;
  const c = coordinator([w0.address, w1.address], ['--run-dir', dir], 100_000);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(3), 120_000);
  c.proc.kill('SIGINT');
  t.is((await c.exited).code, 130, c.output());
  t.regex(c.output(), new RegExp(`stopped \\(SIGINT\\) after step \\d+ of 100000; checkpoint \\S+: \`alexnet coordinator --resume ${dir} --workers ${workers}\` continues the run`));
});

test.serial('separately started: a worker started again with the other --tower is said, and waited for as not back until the right one comes', async (t) => {
  // the operator starts tower 1's worker on tower 0's address by mistake
  const { dir, c, w0, wrong } = await restartedWrongly(t, 0, ['--tower', '1']);
  await c.waitFor(/waiting for worker 0 \(tower 0\) at \S+ to come back \(\d+ s left of --wait-for-workers\): the worker there is tower 1: restart it with --tower 0/, 150_000);
  t.is(c.proc.exitCode, null, 'the run goes on waiting');
  wrong.proc.kill('SIGKILL');
  await wrong.exited;
  const restarts = await backOnItsAddress(t, w0.address, c, dir);
  t.is(restarts.length, 1);
  t.notRegex(c.output(), /refused the handshake|internal error|\n\s+at /);
});

test.serial('separately started: a worker started again with another preset is said and waited for; one that stays wrong ends the run with its refusal, a failed event and the command that continues', async (t) => {
  // the operator starts tower 1 again with the wrong preset
  const { dir, c, w0, w1, port, wrong } = await restartedWrongly(t, 1, ['--tower', '1', '--preset', 'cifar']);
  await c.waitFor(/worker 1 \(tower 1\) at \S+ refused the handshake: preset differs \(coordinator: tiny, worker: cifar\): waiting for a worker that matches the run \(\d+ s left of --wait-for-workers\)/, 150_000);
  t.is(c.proc.exitCode, null, 'the run goes on waiting');
  wrong.proc.kill('SIGKILL');
  await wrong.exited;
  const again = alexnet(['worker', '--tower', '1', '--port', port, '--backend', 'webasm', '--max-batch', '8']);
  killOnTeardown(t, again);
  t.is((await c.exited).code, 0, c.output());
  t.is(events(dir).filter((e) => e.event === 'restart').length, 1);

  // the same mistake not mended within --wait-for-workers: the run ends, saying why and how to go on
  const dir2 = tempDir(t);
  const c2 = coordinator([w0.address, w1.address], ['--checkpoint-every', '5', '--run-dir', dir2, '--wait-for-workers', '60']);
  killOnTeardown(t, c2);
  await c2.waitFor(stepLine(8), 120_000);
  again.proc.kill('SIGKILL');
  await again.exited;
  const wrong2 = alexnet(['worker', '--tower', '1', '--port', port, '--preset', 'cifar', '--backend', 'webasm', '--max-batch', '8']);
  killOnTeardown(t, wrong2);
  const { code } = await c2.exited;
  t.is(code, 1, c2.output());
  t.regex(c2.stderr.join('\n'), /refused the handshake: preset differs \(coordinator: tiny, worker: cifar\) \(still so after 60 s of --wait-for-workers\)/);
  t.regex(c2.stderr.join('\n'), /--resume/);
  t.true(events(dir2).some((e) => e.event === 'failed'), 'a failed event closes the metrics');
  t.notRegex(c2.output(), /internal error|\n\s+at /);
});

test.serial('separately started: a worker that does not come back within --wait-for-workers ends the run, naming it', async (t) => {
  const [w0, w1] = await twoWorkers(t);
  const c = coordinator([w0.address, w1.address], ['--wait-for-workers', '3'], 100_000);
  killOnTeardown(t, c);
  await c.waitFor(stepLine(3), 120_000);
  w1.p.proc.kill('SIGKILL');
  const { code } = await c.exited;
  t.is(code, 1, c.output());
  t.regex(c.stderr.join('\n'), /worker 1 \(tower 1\) at \S+ did not come back within 3 s \(--wait-for-workers\)/);
  t.notRegex(c.output(), /internal error|\n\s+at /);
});

test.serial('the coordinator killed mid-run and started again with --resume continues with the same workers; the torn metrics line is cut, no temporary file is left', async (t) => {
  const dir = tempDir(t);
  const [w0, w1] = await twoWorkers(t);
  const c1 = coordinator([w0.address, w1.address], ['--checkpoint-every', '5', '--run-dir', dir]);
  killOnTeardown(t, c1);
  await c1.waitFor(stepLine(12), 120_000);
  c1.proc.kill('SIGKILL');
  await c1.exited;
  // a kill that came while a checkpoint was being written leaves that one's temporary file (nothing can stop it):
  // the next run removes it and says so; any other would be a leak
  const left = noTempFiles(dir);
  const checkpointTemp = new RegExp(`(^|/)\\.step-\\d+\\.safetensors\\.${c1.proc.pid}\\.tmp$`);
  t.true(left.length <= 1 && left.every((f) => checkpointTemp.test(f)), `temporary files left by the kill: ${left.join(', ')}`);
  // as if the kill had come in the middle of a line
  const torn = '{"event":"step","step":13,"lr":0.01,"lo';
  fs.appendFileSync(path.join(dir, 'metrics.jsonl'), torn);
  // the same workers, still running (one may still be finishing the abandoned step): configured again
  const c2 = coordinator([w0.address, w1.address], ['--resume', dir]);
  killOnTeardown(t, c2);
  const { code } = await c2.exited;
  t.is(code, 0, c2.output());
  const evs = events(dir);
  t.deepEqual(evs.filter((e) => e.event === 'repaired').map((e) => e.dropped_bytes), [torn.length]);
  t.true(c2.stderr.includes(`alexnet coordinator: ${path.join(dir, 'metrics.jsonl')} ended in a torn line (${torn.length} bytes: a process stopped while writing it): cut off, and a repaired line written`), c2.output());
  t.is(evs.filter((e) => e.event === 'run').length, 2);
  if (left.length > 0) t.regex(c2.output(), /removed 1 temporary file left by a run killed mid-write/);
  await sameLossesAsReference(t, dir);
  t.deepEqual(noTempFiles(dir), []);
});

test.serial('a full disk while checkpointing keeps the previous checkpoint (a small tmpfs as the run directory)', async (t) => {
  if (process.getuid?.() !== 0) {
    t.fail('this test mounts a tmpfs and needs root (CI runs as root)');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-fulldisk-'));
  // one checkpoint fits with the metrics and run.json; a second one does not (the first is kept while it is written)
  const ckBytes = encodeCheckpoint(spec, [initTowerParams(spec, 0, 1), initTowerParams(spec, 1, 1)], { step: 0, seed: 1, preset: 'tiny', extra: {} }).length;
  const pages = Math.ceil(ckBytes / 4096) + 8;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${pages * 4096}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    t.fail(`cannot mount a tmpfs on ${dir}: ${(e as Error).message}`);
    return;
  }
  t.teardown(() => {
    execFileSync('umount', [dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  t.log(`tmpfs of ${pages * 4096} bytes; a checkpoint is ${ckBytes} bytes`);
  const [w0, w1] = await twoWorkers(t);
  const c = coordinator([w0.address, w1.address], ['--checkpoint-every', '2', '--keep', '5', '--run-dir', dir]);
  killOnTeardown(t, c);
  const { code } = await c.exited;
  t.not(code, 0, c.output());
  t.regex(c.stderr.join('\n'), /^alexnet: (cannot write checkpoint \S+step-000000004\.safetensors: no space left on the device \(ENOSPC\) \(the previous checkpoint is kept\)|cannot write \S+metrics\.jsonl: no space left on the device.*)$/m);
  t.notRegex(c.output(), /internal error|\n\s+at /);
  t.log(c.stderr.find((l) => l.startsWith('alexnet: ')));
  const kept = listCheckpoints(path.join(dir, 'checkpoints'));
  t.deepEqual(kept.map((f) => path.basename(f)), ['step-000000002.safetensors']);
  const { state, params } = decodeCheckpoint(spec, fs.readFileSync(kept[0]!), kept[0]);
  t.is(state.step, 2);
  t.is(firstNonFinite(params[0]), null);
  t.deepEqual(noTempFiles(dir), [], 'the partial checkpoint was removed');
  // every line that was written is whole
  t.true(events(dir).filter((e) => e.event === 'step').length >= 2);
});

test.serial('a loss that diverges (huge learning rate) stops the run naming the step; every checkpoint on disk is finite', async (t) => {
  const dir = tempDir(t);
  const p = alexnet([...launchArgs, '--lr', '1000', '--checkpoint-every', '1', '--run-dir', dir]);
  killOnTeardown(t, p);
  const { code } = await p.exited;
  t.is(code, 1, p.output());
  // the loss goes NaN, or first the weights run past ±1.84e19 (beyond which a checkpoint reader calls them damage)
  // it names the checkpoint to go on from: the last written in calm training (here the first, after step 0)
  const m = /(?:the loss is (NaN|Infinity|-Infinity) at step (\d+) \(learning rate 1000\): training diverged; lower --lr and resume from the last checkpoint|tower \d's parameters (?:have run away|are not finite) after step (\d+) \([^)]*\): training diverged; no checkpoint written, the previous one is kept|the loss has run away: .* at steps \d+-(\d+) \(learning rate 1000\): training diverged; lower --lr and resume from a checkpoint written before it); the last checkpoint written before the loss rose is (\S+?)(?: \(not the latest, step-\d+\.safetensors\))?: resume with --resume \S+ --lr 500$/m.exec(
    p.stderr.join('\n'),
  );
  t.truthy(m, p.output());
  const step = Number(m![2] ?? m![3] ?? m![4]);
  t.log(`diverged at step ${step}: ${m![1] ? `loss ${m![1]}` : 'weights'}`);
  t.notRegex(p.stderr.join('\n'), /restarting/, 'no restart: a diverged run is not a lost worker');
  const failed = events(dir).filter((e) => e.event === 'failed');
  t.deepEqual(failed.map((e) => e.step), [step]);
  const files = listCheckpoints(path.join(dir, 'checkpoints'));
  t.true(files.length > 0);
  t.true(files.some((f) => path.basename(f) === path.basename(m![5]!)), 'the checkpoint named is on disk');
  for (const f of files) {
    const { state, params } = decodeCheckpoint(spec, fs.readFileSync(f), f);
    t.true(state.step <= step, `${path.basename(f)} is from before the step that diverged`);
    t.is(firstNonFinite(params[0]), null, path.basename(f));
    t.is(firstNonFinite(params[1]), null, path.basename(f));
  }
});
