/**
 * A one-node Slurm cluster for the tests that submit examples/slurm/alexnet.sbatch (slurm.test.ts,
 * slurm-gpu-lost.test.ts): scripts/slurm-setup.sh installs slurm-wlm and munge (as root) and starts munged,
 * slurmctld and slurmd under a temporary folder, on free ports; `stop` cancels what is left and stops them.
 * A cluster that cannot start throws with the reason (a test never passes silently without one).
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive } from './helpers.js';
import { reservedPort } from './ports.js';

export const repo = fileURLToPath(new URL('..', import.meta.url));
const setupScript = path.join(repo, 'scripts', 'slurm-setup.sh');
export const example = path.join(repo, 'examples', 'slurm', 'alexnet.sbatch');
// this node has no GPU, no partition called gpu and no memory configured: the example's #SBATCH lines for a GPU cluster, overridden
export const SBATCH_HERE = ['--partition=debug', '--gres=none', '--cpus-per-task=1', '--overcommit', '--mem=0', '--time=10'];
export const JOB_TIMEOUT_MS = 180_000;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killed after `timeoutMs`. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const tail = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').slice(-40).join('\n') : '(no output file)');

export interface JobInfo {
  state: string;
  exitCode: string;
  restarts: number;
}

export const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED']);

export class SlurmCluster {
  /** The daemons' pids, from their pid files. */
  readonly daemonPids: Record<string, number> = {};
  /** Options for the workers on this node: where the host name does not resolve (some containers), they bind and announce loopback. */
  hostArgs = '';

  private constructor(
    /** A temporary folder: the cluster's state in cluster/, each job's run folder and output beside it. */
    readonly dir: string,
    /** The environment for Slurm's commands (SLURM_CONF and the ports). */
    readonly env: NodeJS.ProcessEnv,
  ) {}

  static async start(): Promise<SlurmCluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-slurm-'));
    // from below the ephemeral range (test/ports.ts): the daemons bind them seconds later (minutes, after an install)
    const ctld = await reservedPort();
    let slurmd = await reservedPort();
    while (slurmd === ctld) slurmd = await reservedPort();
    // the batch script's own default, whatever this shell has
    const { ALEXNET_GPU_REQUEUES: _, ...env } = process.env;
    const c = new SlurmCluster(dir, { ...env, SLURMCTLD_PORT: String(ctld), SLURMD_PORT: String(slurmd), SLURM_CONF: path.join(dir, 'cluster', 'slurm.conf') });
    const r = await run('bash', [setupScript, 'start', path.join(dir, 'cluster')], c.env, 300_000);
    for (const name of ['munged', 'slurmctld', 'slurmd']) {
      const f = path.join(dir, 'cluster', `${name}.pid`);
      if (fs.existsSync(f)) c.daemonPids[name] = Number(fs.readFileSync(f, 'utf8').trim());
    }
    if (r.code !== 0) throw new Error(`the Slurm cluster for this test did not start (scripts/slurm-setup.sh exited with ${r.code}):\n${r.stderr.trim()}`);
    if (!(await dns.lookup(os.hostname()).then(() => true, () => false))) c.hostArgs = ' --host 127.0.0.1';
    return c;
  }

  /** Cancels the jobs left and stops the daemons. */
  stop(): Promise<Run> {
    return run('bash', [setupScript, 'stop', path.join(this.dir, 'cluster')], this.env, 120_000);
  }

  /** stop, then the temporary folder removed. */
  async remove(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async jobInfo(id: string): Promise<JobInfo | null> {
    const r = await run('scontrol', ['show', 'job', '--oneliner', id], this.env, 20_000);
    if (r.code !== 0) return null;
    const field = (k: string) => new RegExp(`\\b${k}=(\\S+)`).exec(r.stdout)?.[1] ?? '';
    return { state: field('JobState'), exitCode: field('ExitCode'), restarts: Number(field('Restarts') || 0) };
  }

  /** Polls until `ok` holds for the job; throws with the job's output after `timeoutMs`. */
  async waitJob(id: string, what: string, ok: (j: JobInfo) => boolean, timeoutMs: number, out: string): Promise<JobInfo> {
    const until = Date.now() + timeoutMs;
    let last: JobInfo | null = null;
    while (Date.now() < until) {
      last = await this.jobInfo(id);
      if (last && ok(last)) return last;
      await sleep(300);
    }
    await run('scancel', [id], this.env, 20_000);
    throw new Error(`job ${id}: not ${what} within ${timeoutMs / 1000} s (last: ${JSON.stringify(last)}); its output:\n${tail(out)}`);
  }

  /**
   * Lets a job that went back in the queue start again in a few seconds: Slurm holds a requeued job for about
   * two minutes (BeginTime). Not at once: slurmd refuses a job whose credential it revoked in the same second
   * ("Job credential revoked").
   */
  async releaseRequeued(t: ExecutionContext, id: string, out: string): Promise<void> {
    await this.waitJob(id, 'pending again after the requeue', (j) => j.state === 'PENDING' && j.restarts >= 1, 60_000, out);
    const release = await run('scontrol', ['update', `jobid=${id}`, 'starttime=now+5'], this.env, 20_000);
    t.is(release.code, 0, `scontrol update starttime=now+5: ${release.stderr}`);
  }

  /**
   * For a job requeued once: lets it start again, waits for its end and checks that it completed after one
   * restart, resuming; returns its output.
   */
  async requeuedToTheEnd(t: ExecutionContext, id: string, out: string): Promise<string> {
    await this.releaseRequeued(t, id, out);
    const end = await this.waitJob(id, 'ended after its requeue', (j) => ENDED.has(j.state), JOB_TIMEOUT_MS, out);
    const output = fs.readFileSync(out, 'utf8');
    t.is(end.state, 'COMPLETED', output);
    t.is(end.exitCode, '0:0', output);
    t.is(end.restarts, 1);
    t.regex(output, new RegExp(`job ${id}, restart 1: resuming `));
    return output;
  }

  /** Submits the example batch script with ALEXNET_TRAIN=`train` (and `env` added), its run folder and output named `name`. */
  async submit(t: ExecutionContext, name: string, train: string, env: NodeJS.ProcessEnv = {}): Promise<{ id: string; runDir: string; out: string }> {
    const runDir = path.join(this.dir, name);
    const out = path.join(this.dir, `${name}.out`);
    const r = await run('sbatch', ['--parsable', ...SBATCH_HERE, `--output=${out}`, example], { ...this.env, ...env, ALEXNET_HOME: repo, ALEXNET_RUN_DIR: runDir, ALEXNET_TRAIN: train + this.hostArgs }, 30_000);
    t.is(r.code, 0, `sbatch: ${r.stderr}`);
    const id = r.stdout.trim().split(';')[0]!;
    t.regex(id, /^\d+$/);
    return { id, runDir, out };
  }
}

/** The worker processes of a job (from their "pid N" lines) are gone once it ended. */
export function workersGone(t: ExecutionContext, out: string): void {
  const pids = [...fs.readFileSync(out, 'utf8').matchAll(/alexnet worker \d: preset \S+, .*?, pid (\d+)/g)].map((m) => Number(m[1]));
  t.true(pids.length >= 2, `worker pids in the output:\n${tail(out)}`);
  for (const pid of pids) t.false(alive(pid), `worker pid ${pid} still running after its job ended`);
}
