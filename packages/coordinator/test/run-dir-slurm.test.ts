/** The run directory's lock under Slurm: a requeued job (same job id, a later attempt) takes over its own earlier attempt's lock, on any node. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lockRunDir } from '../src/run-dir.js';

const lockOf = (job: string, attempt: string) => ({ host: 'gpu99', pid: 1, since: '2026-12-04T00:00:00Z', command: 'alexnet slurm', slurmJob: job, slurmAttempt: attempt });

test.serial('a later attempt of the same Slurm job breaks the lock of an earlier one on another node; anything else is refused', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-slurm-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'run.lock');
  const said: string[] = [];
  process.env.SLURM_JOB_ID = '4711';

  // the same attempt (a second step of the running job, or a mistake): refused, naming the holder
  process.env.SLURM_RESTART_COUNT = '0';
  fs.writeFileSync(file, JSON.stringify(lockOf('4711', '0')));
  t.throws(() => lockRunDir(dir, 'alexnet slurm', (l) => said.push(l)), { message: /is in use by another run: alexnet slurm, pid 1 on gpu99/ });

  // another job: refused
  fs.writeFileSync(file, JSON.stringify(lockOf('4700', '0')));
  t.throws(() => lockRunDir(dir, 'alexnet slurm', (l) => said.push(l)), { message: /pid 1 on gpu99/ });

  // the requeued job: taken, and said
  process.env.SLURM_RESTART_COUNT = '1';
  fs.writeFileSync(file, JSON.stringify(lockOf('4711', '0')));
  const lock = lockRunDir(dir, 'alexnet slurm', (l) => said.push(l));
  t.truthy(lock);
  t.regex(said.at(-1)!, /the run that held it \(attempt 0 of Slurm job 4711, on gpu99, alexnet slurm, since .*\) is gone: lock broken/);
  const now = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  t.like(now, { pid: process.pid, slurmJob: '4711', slurmAttempt: '1' });
  lock!.release();
  t.false(fs.existsSync(file));
});

test.serial("a lock of this host with this process's own pid (a container's pid 1 restarted in its pod) is an earlier process's: broken, and said", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lock-pid-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'run.lock');
  delete process.env.SLURM_JOB_ID;
  fs.writeFileSync(file, JSON.stringify({ host: os.hostname(), pid: process.pid, since: '2026-12-04T00:00:00Z', command: 'alexnet coordinator' }));
  const said: string[] = [];
  const lock = lockRunDir(dir, 'alexnet coordinator', (l) => said.push(l));
  t.truthy(lock);
  t.regex(said.at(-1)!, new RegExp(`held by an earlier process with this one's pid \\(${process.pid}, alexnet coordinator, since 2026-12-04T00:00:00Z\\), which is gone: lock broken`));
  t.like(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>, { pid: process.pid });
  t.not((JSON.parse(fs.readFileSync(file, 'utf8')) as { since: string }).since, '2026-12-04T00:00:00Z', 'the lock is this process’s now');
  lock!.release();
  t.false(fs.existsSync(file));
});
