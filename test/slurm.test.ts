/**
 * `alexnet slurm` under a real Slurm: scripts/slurm-setup.sh installs slurm-wlm and munge (as root) and starts
 * a one-node cluster under a temporary folder; examples/slurm/alexnet.sbatch is submitted with sbatch (tiny
 * preset, options for this node given on sbatch's command line), once straight through and once requeued in the
 * middle (scontrol requeue), and once stopped by SIGTERM as --signal does before the time limit (the script then
 * requeues itself): each ends the step in progress with a checkpoint, starts again, resumes, and logs the losses
 * of the uninterrupted run. Then the daemons stop and nothing is left running. A cluster that
 * cannot start fails the test with the reason (never a silent pass).
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, runEvents } from './helpers.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const setupScript = path.join(repo, 'scripts', 'slurm-setup.sh');
const example = path.join(repo, 'examples', 'slurm', 'alexnet.sbatch');
const STEPS = 60;
let TRAIN = `--preset tiny --backend webasm --batch 8 --steps ${STEPS}`;
// this node has no GPU, no partition called gpu and no memory configured: the example's #SBATCH lines for a GPU cluster, overridden
const SBATCH_HERE = ['--partition=debug', '--gres=none', '--cpus-per-task=1', '--overcommit', '--mem=0', '--time=10'];
const JOB_TIMEOUT_MS = 180_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killed after `timeoutMs`. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs / 1000} s)`;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('error', (e) => (stderr += `\n${e.message}`));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir = '';
let env: NodeJS.ProcessEnv = {};
const daemonPids: Record<string, number> = {};

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-slurm-'));
  const [ctld, slurmd] = [await freePort(), await freePort()];
  env = { ...process.env, SLURMCTLD_PORT: String(ctld), SLURMD_PORT: String(slurmd), SLURM_CONF: path.join(dir, 'cluster', 'slurm.conf') };
  const r = await run('bash', [setupScript, 'start', path.join(dir, 'cluster')], env, 300_000);
  for (const name of ['munged', 'slurmctld', 'slurmd']) {
    const f = path.join(dir, 'cluster', `${name}.pid`);
    if (fs.existsSync(f)) daemonPids[name] = Number(fs.readFileSync(f, 'utf8').trim());
  }
  if (r.code !== 0) throw new Error(`the Slurm cluster for this test did not start (scripts/slurm-setup.sh exited with ${r.code}):\n${r.stderr.trim()}`);
  // the workers announce the host name; where it does not resolve here (some containers), they bind and announce loopback
  if (!(await dns.lookup(os.hostname()).then(() => true, () => false))) TRAIN += ' --host 127.0.0.1';
});

test.after.always(async () => {
  // normally done by the last test; here too when a test failed before it
  if (dir) await run('bash', [setupScript, 'stop', path.join(dir, 'cluster')], env, 120_000);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface JobInfo {
  state: string;
  exitCode: string;
  restarts: number;
}

async function jobInfo(id: string): Promise<JobInfo | null> {
  const r = await run('scontrol', ['show', 'job', '--oneliner', id], env, 20_000);
  if (r.code !== 0) return null;
  const field = (k: string) => new RegExp(`\\b${k}=(\\S+)`).exec(r.stdout)?.[1] ?? '';
  return { state: field('JobState'), exitCode: field('ExitCode'), restarts: Number(field('Restarts') || 0) };
}

const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED']);

/** Polls until `ok` holds for the job; throws with the job's output after `timeoutMs`. */
async function waitJob(id: string, what: string, ok: (j: JobInfo) => boolean, timeoutMs: number, out: string): Promise<JobInfo> {
  const until = Date.now() + timeoutMs;
  let last: JobInfo | null = null;
  while (Date.now() < until) {
    last = await jobInfo(id);
    if (last && ok(last)) return last;
    await sleep(300);
  }
  await run('scancel', [id], env, 20_000);
  throw new Error(`job ${id}: not ${what} within ${timeoutMs / 1000} s (last: ${JSON.stringify(last)}); its output:\n${tail(out)}`);
}

const tail = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').slice(-40).join('\n') : '(no output file)');

async function submit(t: ExecutionContext, name: string): Promise<{ id: string; runDir: string; out: string }> {
  const runDir = path.join(dir, name);
  const out = path.join(dir, `${name}.out`);
  const r = await run('sbatch', ['--parsable', ...SBATCH_HERE, `--output=${out}`, example], { ...env, ALEXNET_HOME: repo, ALEXNET_RUN_DIR: runDir, ALEXNET_TRAIN: TRAIN }, 30_000);
  t.is(r.code, 0, `sbatch: ${r.stderr}`);
  const id = r.stdout.trim().split(';')[0]!;
  t.regex(id, /^\d+$/);
  return { id, runDir, out };
}

/** The worker processes of a job (from their "pid N" lines) are gone once it ended. */
function workersGone(t: ExecutionContext, out: string): void {
  const pids = [...fs.readFileSync(out, 'utf8').matchAll(/alexnet worker \d: preset \S+, .*?, pid (\d+)/g)].map((m) => Number(m[1]));
  t.true(pids.length >= 2, `worker pids in the output:\n${tail(out)}`);
  for (const pid of pids) t.false(alive(pid), `worker pid ${pid} still running after its job ended`);
}

test.serial("both examples' #SBATCH lines are ones sbatch takes (sbatch --test-only), and the paper example refuses to start without its data folder", async (t) => {
  for (const f of ['alexnet.sbatch', 'alexnet-paper.sbatch']) {
    const r = await run('sbatch', ['--test-only', ...SBATCH_HERE, path.join(repo, 'examples', 'slurm', f)], env, 30_000);
    t.is(r.code, 0, `${f}: ${r.stderr}`);
    t.regex(r.stderr, /to start at/);
  }
  const { ALEXNET_DATA: _, ...noData } = env;
  const out = path.join(dir, 'paper.out');
  const r = await run('sbatch', ['--parsable', ...SBATCH_HERE, `--output=${out}`, path.join(repo, 'examples', 'slurm', 'alexnet-paper.sbatch')], noData, 30_000);
  t.is(r.code, 0, r.stderr);
  const end = await waitJob(r.stdout.trim(), 'ended', (j) => ENDED.has(j.state), 60_000, out);
  t.is(end.state, 'FAILED');
  t.regex(fs.readFileSync(out, 'utf8'), /set ALEXNET_DATA to the ImageNet-style folder/);
});

let straight: Map<number, number> | null = null;

test.serial('the example batch script trains to its last step as a three-task job step: roles from SLURM_PROCID, rendezvous and token in the run folder', async (t) => {
  const { id, runDir, out } = await submit(t, 'straight');
  const end = await waitJob(id, 'ended', (j) => ENDED.has(j.state), JOB_TIMEOUT_MS, out);
  const output = fs.readFileSync(out, 'utf8');
  t.is(end.state, 'COMPLETED', output);
  t.is(end.exitCode, '0:0', output);
  for (const [task, role] of [[0, 'worker0'], [1, 'worker1'], [2, 'coordinator']] as const) t.regex(output, new RegExp(`^${task}: alexnet slurm: task ${task} \\(${role}\\) on \\S+: job ${id}, step 0`, 'm'));
  t.regex(output, /^2: alexnet slurm: task 2 \(coordinator\) on \S+: workers at \S+:\d+ and \S+:\d+$/m);
  t.regex(output, /^0: alexnet worker 0: authentication: a shared token$/m);

  const ev = runEvents(runDir);
  const steps = ev.filter((e) => e.event === 'step');
  t.deepEqual(steps.map((e) => e.step), [...Array(STEPS).keys()]);
  t.true(steps.every((e) => Number.isFinite(e.loss)));
  t.is(ev.at(-1)!.event, 'done');
  t.is(ev.at(-1)!.steps, STEPS);
  straight = new Map(steps.map((e) => [e.step!, e.loss!]));

  // the attempt's folder: only the job's user may read it and the token in it
  const rv = path.join(runDir, 'slurm', `${id}.0.0`);
  t.is(fs.statSync(rv).mode & 0o777, 0o700);
  t.is(fs.statSync(path.join(rv, 'token')).mode & 0o777, 0o600);
  t.true(fs.readFileSync(path.join(rv, 'token'), 'utf8').trim().length >= 32);
  t.deepEqual(['coordinator.exit', 'worker0.exit', 'worker1.exit'].map((f) => fs.readFileSync(path.join(rv, f), 'utf8').trim()), ['0', '0', '0']);
  workersGone(t, out);
});

/**
 * Submits the example, interrupts it at step 5 or later with `interrupt`, lets the requeued job start at once,
 * and checks that it ran to its end with a checkpoint at the interruption and the uninterrupted run's losses.
 * Returns the job's output.
 */
async function interrupted(t: ExecutionContext, name: string, interrupt: (id: string) => Promise<void>): Promise<string> {
  if (!straight) {
    t.fail('the uninterrupted run (the test before) did not finish: nothing to compare with');
    return '';
  }
  const { id, runDir, out } = await submit(t, name);
  // well into the run, long before its end (read as text: the line being written may be incomplete)
  const until = Date.now() + JOB_TIMEOUT_MS;
  const metrics = path.join(runDir, 'metrics.jsonl');
  while (!(fs.existsSync(metrics) && /"event":"step","step":([5-9]|\d\d+),/.test(fs.readFileSync(metrics, 'utf8')))) {
    if (Date.now() > until) throw new Error(`job ${id} logged no step 5 within ${JOB_TIMEOUT_MS / 1000} s:\n${tail(out)}`);
    const j = await jobInfo(id);
    if (j && ENDED.has(j.state)) throw new Error(`job ${id} ended (${j.state}) before step 5:\n${tail(out)}`);
    await sleep(100);
  }
  await interrupt(id);
  // Slurm holds a requeued job for about two minutes (BeginTime); let it start again in a few seconds. Not at
  // once: slurmd refuses a job whose credential it revoked in the same second ("Job credential revoked")
  await waitJob(id, 'pending again after the requeue', (j) => j.state === 'PENDING' && j.restarts >= 1, 60_000, out);
  const release = await run('scontrol', ['update', `jobid=${id}`, 'starttime=now+5'], env, 20_000);
  t.is(release.code, 0, `scontrol update starttime=now+5: ${release.stderr}`);
  const end = await waitJob(id, 'ended after its requeue', (j) => ENDED.has(j.state), JOB_TIMEOUT_MS, out);
  const output = fs.readFileSync(out, 'utf8');
  t.is(end.state, 'COMPLETED', output);
  t.is(end.exitCode, '0:0', output);
  t.is(end.restarts, 1);
  t.regex(output, new RegExp(`job ${id}, restart 1: resuming `));

  const ev = runEvents(runDir);
  const stopped = ev.find((e) => e.event === 'stopped');
  t.truthy(stopped, `no "stopped" event: SIGTERM did not end the run with a checkpoint\n${tail(out)}`);
  t.is(stopped!.reason, 'SIGTERM');
  const k = stopped!.step!;
  t.true(k >= 5 && k < STEPS, `stopped at step ${k}`);
  t.truthy(stopped!.checkpoint);
  const runs = ev.filter((e) => e.event === 'run');
  t.is(runs.length, 2);
  t.is(runs[1]!.start_step, k);
  t.is(runs[1]!.resumed_from, stopped!.checkpoint);
  // every step logged, in either attempt, has the loss of the run never interrupted; together they are all the steps
  const steps = ev.filter((e) => e.event === 'step');
  for (const e of steps) t.is(e.loss, straight.get(e.step!), `step ${e.step}`);
  t.deepEqual([...new Set(steps.map((e) => e.step))].sort((a, b) => a! - b!), [...Array(STEPS).keys()]);
  t.is(ev.at(-1)!.event, 'done');
  workersGone(t, out);
  return output;
}

test.serial("requeued in the middle (scontrol requeue), the job checkpoints the step in progress, starts again, resumes, and logs the uninterrupted run's losses", async (t) => {
  await interrupted(t, 'requeued', async (id) => {
    const r = await run('scontrol', ['requeue', id], env, 20_000);
    t.is(r.code, 0, `scontrol requeue: ${r.stderr}`);
  });
});

test.serial("SIGTERM to the step before the time limit (what --signal=TERM@120 sends; here scancel --signal): checkpoint, exit 143, the script requeues the job, which resumes with the uninterrupted run's losses", async (t) => {
  const output = await interrupted(t, 'signalled', async (id) => {
    // without --batch or --full: the step's processes only, not the batch script, as --signal does
    const r = await run('scancel', ['--signal=TERM', id], env, 20_000);
    t.is(r.code, 0, `scancel --signal=TERM: ${r.stderr}`);
  });
  t.regex(output, new RegExp(`^2: alexnet coordinator: stopped \\(SIGTERM\\) after step \\d+ of ${STEPS}; checkpoint `, 'm'));
  t.regex(output, /^srun: error: \S+: task 2: Exited with exit code 143$/m);
  t.regex(output, /stopped with a checkpoint before the time limit: requeueing job \d+$/m);
});

test.serial('the daemons stop and leave nothing running', async (t) => {
  t.deepEqual(Object.keys(daemonPids).sort(), ['munged', 'slurmctld', 'slurmd']);
  const r = await run('bash', [setupScript, 'stop', path.join(dir, 'cluster')], env, 120_000);
  t.is(r.code, 0, r.stderr);
  for (const [name, pid] of Object.entries(daemonPids)) t.false(alive(pid), `${name} (pid ${pid}) still running`);
});
