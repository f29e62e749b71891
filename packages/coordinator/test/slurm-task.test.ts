/**
 * `alexnet slurm` without a cluster: a task's role and resources from Slurm's environment, the GPU a worker
 * opens, the rendezvous folder and token, and the one-line refusals outside a three-task step.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AdapterInfo } from '@alexnet-mp/core';
import { alexnetBin } from '../src/launch.js';
import { parseGpuList, slurmTask } from '../src/slurm/env.js';
import { chooseGpu } from '../src/slurm/gpu.js';
import { overwriteOfAttempt } from '../src/cli/slurm-command.js';
import { RendezvousError, jobTokenFile, removeEndedAttempts, rendezvousDir, waitForEntries, writeAtomic, writeExit } from '../src/slurm/rendezvous.js';

const step = (procid: number, more: Record<string, string> = {}): NodeJS.ProcessEnv => ({ SLURM_PROCID: String(procid), SLURM_NTASKS: '3', SLURM_JOB_ID: '42', SLURM_STEP_ID: '0', SLURM_LOCALID: String(procid), SLURMD_NODENAME: 'gpu07', SLURM_STEP_NODELIST: 'gpu07', ...more });

test('roles by SLURM_PROCID: 0 and 1 the workers, 2 the coordinator; the attempt from SLURM_RESTART_COUNT; GPUs from SLURM_STEP_GPUS first', (t) => {
  t.deepEqual(slurmTask(step(0)).role, { kind: 'worker', tower: 0 });
  t.deepEqual(slurmTask(step(1)).role, { kind: 'worker', tower: 1 });
  t.deepEqual(slurmTask(step(2)).role, { kind: 'coordinator' });
  const w = slurmTask(step(1, { SLURM_RESTART_COUNT: '2', SLURM_STEP_GPUS: '2,3', SLURM_JOB_GPUS: '0,1,2,3', CUDA_VISIBLE_DEVICES: '0,1' }));
  t.is(w.restartCount, 2);
  t.deepEqual(w.gpus, [2, 3]);
  t.is(w.node, 'gpu07');
  t.is(w.nodelist, 'gpu07');
  t.deepEqual(slurmTask(step(0, { CUDA_VISIBLE_DEVICES: '1' })).gpus, [1]);
  t.deepEqual(slurmTask(step(0)).gpus, []);
  t.is(slurmTask(step(0)).restartCount, 0);
});

test('GPU lists: indices only; UUIDs and NoDevFiles are none', (t) => {
  t.deepEqual(parseGpuList('0,1'), [0, 1]);
  t.is(parseGpuList('GPU-8c2e1f3a-aaaa'), null);
  t.is(parseGpuList('NoDevFiles'), null);
  t.is(parseGpuList(''), null);
  t.is(parseGpuList(undefined), null);
});

test('outside a three-task step: what is wrong, in words', (t) => {
  t.throws(() => slurmTask({}), { name: 'SlurmSetupError', message: /SLURM_PROCID is not set: .*srun --ntasks=3/ });
  t.throws(() => slurmTask(step(0, { SLURM_NTASKS: '4' })), { message: /has 4 tasks; a run takes exactly 3/ });
  t.throws(() => slurmTask(step(3, { SLURM_NTASKS: '' })), { message: /SLURM_PROCID is 3; a run has tasks 0, 1 and 2/ });
  t.throws(() => slurmTask(step(0, { SLURM_JOB_ID: '' })), { message: /SLURM_JOB_ID is not set/ });
  // the batch script itself: SLURM_PROCID 0 and SLURM_NTASKS 3, but no step
  t.throws(() => slurmTask({ SLURM_PROCID: '0', SLURM_NTASKS: '3', SLURM_JOB_ID: '42' }), { message: /SLURM_STEP_ID is not set: this is the batch script itself/ });
});

const gpu = (index: number, software = false): AdapterInfo => ({ index, name: software ? 'llvmpipe' : 'NVIDIA H200', backend: 'vulkan', vendor: '', architecture: software ? 'software' : 'hopper', device: '', description: '', software });

test("a worker's GPU: its own where WebGPU sees only the task's, Slurm's index where it sees the whole node, by SLURM_LOCALID when the task has two", (t) => {
  t.is(chooseGpu([], 0, [gpu(0)]).device, null);
  // confined to its GPU (cgroups): Dawn lists just that one
  t.is(chooseGpu([3], 0, [gpu(0), gpu(1, true)]).device, 0);
  // the node's four GPUs all visible: Slurm's GPU 3 is Dawn's fourth
  t.is(chooseGpu([3], 1, [0, 1, 2, 3].map((i) => gpu(i))).device, 3);
  // --gres=gpu:2 for the step, every task seeing both: worker 0 (local 0) the first, worker 1 (local 1) the second
  t.is(chooseGpu([0, 1], 0, [gpu(0), gpu(1)]).device, 0);
  t.is(chooseGpu([0, 1], 1, [gpu(0), gpu(1)]).device, 1);
  t.regex(chooseGpu([0, 1], 1, [gpu(0), gpu(1)]).line, /Slurm's GPU 1 \(of 0,1, by SLURM_LOCALID 1\): WebGPU device 1/);
  // no GPU Dawn can open: the backend decides
  t.is(chooseGpu([0], 0, [gpu(0, true)]).device, null);
});

test('the rendezvous folder: one per attempt (mode 700), one token for all tasks (600), files whole, ended attempts removed', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-rv-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  const first = rendezvousDir(runDir, { jobId: '42', restartCount: 0, stepId: '0' });
  t.is(path.basename(first), '42.0.0');
  t.is(fs.statSync(first).mode & 0o777, 0o700);
  const token = jobTokenFile(first);
  t.is(jobTokenFile(first), token);
  const text = fs.readFileSync(token, 'utf8');
  t.regex(text, /^[A-Za-z0-9_-]{32}\n$/);
  t.is(fs.statSync(token).mode & 0o777, 0o600);
  t.deepEqual(fs.readdirSync(first), ['token'], 'no temporary file left');

  writeAtomic(path.join(first, 'worker0'), 'gpu07:40001\n', 0o644);
  // worker1 appears while the wait polls (written at its second poll: no timer, which a busy test process
  // could fire after the wait's deadline)
  let polls = 0;
  const late = () => {
    if (++polls === 2) writeAtomic(path.join(first, 'worker1'), 'gpu07:40002\n', 0o644);
    return null;
  };
  t.deepEqual(await waitForEntries(first, ['worker0', 'worker1'], 60_000, late, 20), ['gpu07:40001', 'gpu07:40002']);
  t.is(polls, 2, 'found at the poll after it was written');
  // a worker that exited says so at once; nobody at all: a timeout that says where it looked
  writeExit(first, 'worker1', 2);
  await t.throwsAsync(waitForEntries(first, ['worker9'], 5000, () => 'worker 1 exited', 20), { instanceOf: RendezvousError, message: 'worker 1 exited' });
  await t.throwsAsync(waitForEntries(first, ['worker9'], 100, () => null, 20), { message: /worker9 did not appear in .*42\.0\.0 within 0 s: .*shared storage/ });

  // another job's attempt is removed once its coordinator has exited; this job's earlier attempt (Slurm ended it
  // before the requeue) even without an exit code (a lost node, a killed coordinator)
  const other = rendezvousDir(runDir, { jobId: '41', restartCount: 0, stepId: '0' });
  fs.writeFileSync(path.join(runDir, 'slurm', 'gpu-lost'), '41 0 2026-12-06T00:00:00Z worker1 gpu07\n');
  const second = rendezvousDir(runDir, { jobId: '42', restartCount: 1, stepId: '0' });
  removeEndedAttempts(runDir, second);
  t.false(fs.existsSync(first), "this job's earlier attempt is removed");
  t.true(fs.existsSync(other), "another job's attempt whose coordinator has not exited is kept");
  t.true(fs.existsSync(path.join(runDir, 'slurm', 'gpu-lost')), 'a file of the folder is left alone');
  writeExit(other, 'coordinator', 143);
  removeEndedAttempts(runDir, second);
  t.false(fs.existsSync(other));
  t.true(fs.existsSync(second));
});

test('alexnet slurm outside a job step, or without a run folder: one line, exit code 2', (t) => {
  const run = (env: NodeJS.ProcessEnv, args: string[]) => spawnSync(process.execPath, [alexnetBin, 'slurm', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, encoding: 'utf8', timeout: 60_000 });
  const outside = run({}, ['--run-dir', 'x']);
  t.is(outside.status, 2, outside.stderr);
  t.regex(outside.stderr, /^alexnet: SLURM_PROCID is not set: `alexnet slurm` runs as a task of a Slurm job step/);
  t.is(outside.stderr.trim().split('\n').length, 1);
  const noDir = run(step(2), []);
  t.is(noDir.status, 2, noDir.stderr);
  t.regex(noDir.stderr, /^alexnet: give --run-dir DIR \(or --resume DIR\), a folder every node of the job sees/);
});

test('--overwrite is the first attempt\'s: a requeued attempt drops it and says so', (t) => {
  t.deepEqual(overwriteOfAttempt(undefined, 0), { overwrite: false, note: null });
  t.deepEqual(overwriteOfAttempt(true, 0), { overwrite: true, note: null });
  const requeued = overwriteOfAttempt(true, 2);
  t.false(requeued.overwrite);
  t.regex(requeued.note!, /^requeued \(2x\): --overwrite applied to the job's first run only/);
});

/** The three tasks of a job step as local processes (the environment srun gives each), to the end; each one's exit code and output. */
async function jobStep(job: string, args: string[]): Promise<{ status: number | null; out: string }[]> {
  return Promise.all(
    [0, 1, 2].map(
      (procid) =>
        new Promise<{ status: number | null; out: string }>((resolve) => {
          const p = spawn(process.execPath, [alexnetBin, 'slurm', '--host', '127.0.0.1', '--backend', 'webasm', '--threads', '1', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...step(procid, { SLURM_JOB_ID: job }) } });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d));
          p.stderr.on('data', (d: Buffer) => (out += d));
          const timer = setTimeout(() => p.kill('SIGKILL'), 300_000);
          p.on('close', (status) => {
            clearTimeout(timer);
            resolve({ status, out });
          });
        }),
    ),
  );
}

test("alexnet slurm --overwrite starts over in a run folder that holds another run's checkpoints; without it the job ends in one line", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-slurm-overwrite-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = ['--run-dir', dir, '--preset', 'tiny', '--steps', '2', '--batch', '4', '--checkpoint-every', '1', '--eval-every', '0'];
  const first = await jobStep('50', run);
  t.deepEqual(first.map((r) => r.status), [0, 0, 0], first.map((r) => r.out).join('\n---\n'));
  const firstRun = (JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { run_id: string }).run_id;
  // another job into the same folder: the coordinator refuses, and the workers end with it
  const refused = await jobStep('51', run);
  t.is(refused[2]!.status, 2, refused[2]!.out);
  t.regex(refused[2]!.out, /holds another run's checkpoints .*start over with --overwrite/);
  t.deepEqual(refused.slice(0, 2).map((r) => r.status), [0, 0], refused.map((r) => r.out).join('\n---\n'));
  const again = await jobStep('52', [...run, '--overwrite']);
  t.deepEqual(again.map((r) => r.status), [0, 0, 0], again.map((r) => r.out).join('\n---\n'));
  t.regex(again[2]!.out, /--overwrite: removed the previous run's 2 checkpoints/);
  t.not((JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { run_id: string }).run_id, firstRun);
});

test("the batch scripts' --overwrite: found among the training options in either spelling, and the advice to resubmit says to drop it", (t) => {
  const afterStep = path.join(path.dirname(alexnetBin), '..', 'examples', 'slurm', 'after-step.sh');
  const ask = (train: string) => spawnSync('bash', ['-c', `TRAIN=(${train}); source "${afterStep}"; if wants_overwrite; then echo overwrite; else echo keep; fi; again`], { encoding: 'utf8' });
  for (const [train, want] of [['--preset tiny --overwrite', 'overwrite'], ['--overwrite=true --preset tiny', 'overwrite'], ['--preset tiny', 'keep'], ['--run-dir runs/--overwrite', 'keep']] as const) {
    const r = ask(train);
    t.is(r.status, 0, r.stderr);
    const [said, advice] = r.stdout.trim().split('\n');
    t.is(said, want, train);
    t.is(advice, want === 'overwrite' ? 'sbatch this script again without --overwrite in its training options to continue from the latest checkpoint (with it, the run starts over)' : 'sbatch this script again to continue from the latest checkpoint', train);
  }
});
