/**
 * The run directory's lock under a scheduler: a requeued Slurm job (same job id, a later attempt) takes over its own
 * earlier attempt's lock, on any node, and so does a later process of the same ALEXNET_LOCK_OWNER (a Kubernetes Job's
 * next pod) on another host; either goes on in a folder whose log of steps is its own earlier incarnation's.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { LOCK_RENEW_MS, lockRunDir, prepareRunDir } from '../src/run-dir.js';

const lockOf = (job: string, attempt: string) => ({ host: 'gpu99', pid: 1, since: '2026-12-04T00:00:00Z', command: 'alexnet slurm', slurmJob: job, slurmAttempt: attempt });

test.serial('a later attempt of the same Slurm job breaks the lock of an earlier one on another node; anything else is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-slurm-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'run.lock');
  const said: string[] = [];
  process.env.SLURM_JOB_ID = '4711';

  // the same attempt (a second step of the running job, or a mistake): refused, naming the holder
  process.env.SLURM_RESTART_COUNT = '0';
  fs.writeFileSync(file, JSON.stringify(lockOf('4711', '0')));
  await t.throwsAsync(lockRunDir(dir, 'alexnet slurm', (l) => said.push(l)), { message: /is in use by another run: alexnet slurm, pid 1 on gpu99/ });

  // another job: refused
  fs.writeFileSync(file, JSON.stringify(lockOf('4700', '0')));
  await t.throwsAsync(lockRunDir(dir, 'alexnet slurm', (l) => said.push(l)), { message: /pid 1 on gpu99/ });

  // the requeued job: taken, and said
  process.env.SLURM_RESTART_COUNT = '1';
  fs.writeFileSync(file, JSON.stringify(lockOf('4711', '0')));
  const lock = await lockRunDir(dir, 'alexnet slurm', (l) => said.push(l));
  t.truthy(lock);
  t.regex(said.at(-1)!, /the run that held it \(attempt 0 of Slurm job 4711, on gpu99, alexnet slurm, since .*\) is gone: lock broken/);
  const now = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  t.like(now, { pid: process.pid, slurmJob: '4711', slurmAttempt: '1' });
  lock!.release();
  t.false(fs.existsSync(file));
});

test.serial("a lock of this host with this process's own pid (a container's pid 1 restarted in its pod) is an earlier process's: broken, and said", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-pid-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'run.lock');
  delete process.env.SLURM_JOB_ID;
  fs.writeFileSync(file, JSON.stringify({ host: os.hostname(), pid: process.pid, since: '2026-12-04T00:00:00Z', command: 'alexnet coordinator' }));
  const said: string[] = [];
  const lock = await lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l));
  t.truthy(lock);
  t.regex(said.at(-1)!, new RegExp(`held by an earlier process with this one's pid \\(${process.pid}, alexnet coordinator, since 2026-12-04T00:00:00Z\\), which is gone: lock broken`));
  t.like(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>, { pid: process.pid });
  t.not((JSON.parse(fs.readFileSync(file, 'utf8')) as { since: string }).since, '2026-12-04T00:00:00Z', 'the lock is this process’s now');
  lock!.release();
  t.false(fs.existsSync(file));
});

test.serial('a later process of the same ALEXNET_LOCK_OWNER on another host breaks a lock not renewed for a minute and goes on after its log; a renewed one, another owner, or none, is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-owner-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.teardown(() => delete process.env.ALEXNET_LOCK_OWNER);
  delete process.env.SLURM_JOB_ID;
  delete process.env.SLURM_RESTART_COUNT;
  const file = path.join(dir, 'run.lock');
  const said: string[] = [];
  // the Job's first pod, on another node, lost before its first checkpoint: its lock, run.json and a log of steps
  const podLock = (owner?: string) => JSON.stringify({ host: 'alexnet-coordinator-x7k2p', pid: 1, since: '2026-12-06T00:00:00Z', command: 'alexnet coordinator', ...(owner ? { owner } : {}) });
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ event: 'run', run_id: '20261206T000000Z-aaaaaa', lock_owner: 'job-uid-1' }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), JSON.stringify({ event: 'run', run_id: '20261206T000000Z-aaaaaa', start_step: 0 }) + '\n' + JSON.stringify({ event: 'step', step: 0, loss: 2.3 }) + '\n');

  // no owner here, or another: a lock of another host is never broken on a guess
  fs.writeFileSync(file, podLock('job-uid-1'));
  await t.throwsAsync(lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l)), { message: /is in use by another run: alexnet coordinator, pid 1 on alexnet-coordinator-x7k2p/ });
  process.env.ALEXNET_LOCK_OWNER = 'job-uid-2';
  await t.throwsAsync(lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l)), { message: /is in use by another run/ });
  // the same owner, but the lock recorded none (an older build): refused too
  process.env.ALEXNET_LOCK_OWNER = 'job-uid-1';
  fs.writeFileSync(file, podLock());
  await t.throwsAsync(lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l)), { message: /is in use by another run/ });

  // the same owner, its lock renewed just now (a pod still terminating, writing its checkpoint): waited for, then
  // (here at once) refused, saying when it is taken
  fs.writeFileSync(file, podLock('job-uid-1'));
  await t.throwsAsync(lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l), { ownerWaitMs: 0 }), {
    message: /is in use by an earlier process of ALEXNET_LOCK_OWNER job-uid-1: alexnet coordinator, pid 1 on alexnet-coordinator-x7k2p, since .*, its lock renewed 0 s ago .*taken over once not renewed for 60 s/,
  });
  // not renewed for two minutes (its node lost): taken over, and the earlier pod's log of steps is no other run's
  const old = new Date(Date.now() - 120_000);
  fs.utimesSync(file, old, old);
  const lock = await prepareRunDir({ runDir: dir, command: 'alexnet coordinator', info: (l) => said.push(l) });
  t.truthy(lock);
  t.true(said.some((l) => /the run that held it \(an earlier process of ALEXNET_LOCK_OWNER job-uid-1, on alexnet-coordinator-x7k2p, its lock not renewed for 120 s, alexnet coordinator, since .*\) is gone: lock broken/.test(l)), said.join('\n'));
  t.like(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>, { pid: process.pid, owner: 'job-uid-1' });
  lock!.release();
  t.false(fs.existsSync(file));

  // a lock this process took, then taken over by a later holder with the same pid (pid 1 of another pod): not removed on release
  const again = (await lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l)))!;
  const theirs = JSON.stringify({ host: 'alexnet-coordinator-q9w8e', pid: process.pid, since: '2026-12-06T01:00:00Z', command: 'alexnet coordinator', owner: 'job-uid-1' });
  fs.writeFileSync(file, theirs);
  again.release();
  t.is(fs.readFileSync(file, 'utf8'), theirs, 'the later holder keeps its lock');
  fs.rmSync(file);

  // another owner's log of steps without a checkpoint is another run's: refused
  process.env.ALEXNET_LOCK_OWNER = 'job-uid-2';
  await t.throwsAsync(prepareRunDir({ runDir: dir, command: 'alexnet coordinator', info: (l) => said.push(l) }), { message: /holds another run's log .* but no checkpoint/ });
  t.false(fs.existsSync(file), 'the refusal leaves no lock');
});

test.serial('a held lock is renewed every 10 s; one taken over meanwhile (this process paused past a minute) is said to be lost', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-renew-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  delete process.env.SLURM_JOB_ID;
  const lostTo: string[] = [];
  const lock = (await lockRunDir(dir, 'alexnet coordinator', () => {}, { onLost: (by) => lostTo.push(by.host) }))!;
  t.teardown(() => lock.release());
  const old = new Date(Date.now() - 300_000);
  fs.utimesSync(lock.file, old, old);
  await new Promise((r) => setTimeout(r, LOCK_RENEW_MS + 1000));
  const age = Date.now() - fs.statSync(lock.file).mtimeMs;
  t.true(age < LOCK_RENEW_MS + 1000, `renewed ${(age / 1000).toFixed(1)} s ago`);
  t.deepEqual(lostTo, []);
  // the same owner's next pod took it over while this process was paused
  const theirs = JSON.stringify({ host: 'alexnet-coordinator-next', pid: 1, since: '2026-12-06T02:00:00Z', command: 'alexnet coordinator' });
  fs.writeFileSync(lock.file, theirs);
  await new Promise((r) => setTimeout(r, LOCK_RENEW_MS + 1000));
  t.deepEqual(lostTo, ['alexnet-coordinator-next']);
  lock.release();
  t.is(fs.readFileSync(lock.file, 'utf8'), theirs, 'their lock stays');
});

test.serial("the same owner's earlier process still renewing its lock is waited for, and its lock taken once unrenewed for a minute", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-wait-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.teardown(() => delete process.env.ALEXNET_LOCK_OWNER);
  delete process.env.SLURM_JOB_ID;
  process.env.ALEXNET_LOCK_OWNER = 'job-uid-7';
  const file = path.join(dir, 'run.lock');
  fs.writeFileSync(file, JSON.stringify({ host: 'alexnet-coordinator-old', pid: 1, since: '2026-12-06T00:00:00Z', command: 'alexnet coordinator', owner: 'job-uid-7' }));
  // renewed 57 s ago: stale 3 s from now
  const renewed = new Date(Date.now() - 57_000);
  fs.utimesSync(file, renewed, renewed);
  const said: string[] = [];
  const t0 = Date.now();
  const lock = (await lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l), { ownerWaitMs: 20_000 }))!;
  t.teardown(() => lock.release());
  const waited = Date.now() - t0;
  t.true(waited >= 2500 && waited < 15_000, `waited ${waited} ms`);
  t.regex(said[0]!, /held by an earlier process of ALEXNET_LOCK_OWNER job-uid-7 \(alexnet coordinator, pid 1 on alexnet-coordinator-old, its lock renewed 57 s ago\): waiting for it to end \(taken over once not renewed for 60 s; at most 20 s\)/);
  t.regex(said.at(-1)!, /is gone: lock broken/);
  t.false(fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temporary file left');
});

test.serial('a lock that cannot be written (a full disk) leaves no temporary file; a process under its parent\'s lock writes nothing', async (t) => {
  if (process.getuid?.() !== 0) return t.pass('mounting a full tmpfs needs root');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', dir]).status === 0;
  t.teardown(() => {
    if (mounted) spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  if (!mounted) return t.pass('mount is not allowed here');
  // the parent's lock (as launch holds it for its coordinator), then the disk filled
  fs.writeFileSync(path.join(dir, 'run.lock'), JSON.stringify({ host: os.hostname(), pid: process.ppid, since: new Date().toISOString(), command: 'alexnet launch' }) + '\n');
  let n = 0;
  const fill = () => {
    try {
      for (;;) fs.writeFileSync(path.join(dir, `fill-${n++}`), Buffer.alloc(512));
    } catch {
      // full
    }
  };
  fill();
  t.is(await lockRunDir(dir, 'alexnet coordinator', () => {}), null, "under its parent's lock: taken as held, nothing written");
  // no lock there: this process must write its own, and cannot
  fs.rmSync(path.join(dir, 'run.lock'));
  fill();
  await t.throwsAsync(lockRunDir(dir, 'alexnet coordinator', () => {}), { message: /cannot write the lock file .*run\.lock: no space left on the device \(ENOSPC\)/ });
  t.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
});
