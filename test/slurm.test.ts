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
import fs from 'node:fs';
import path from 'node:path';
import { runEvents, alive } from './helpers.js';
import { ENDED, JOB_TIMEOUT_MS, SBATCH_HERE, SlurmCluster, repo, run, sleep, tail, workersGone } from './slurm-cluster.js';

// long enough that an interruption sent at step 5 (through slurmctld and slurmd) lands well before the end
const STEPS = 200;
const TRAIN = `--preset tiny --backend webasm --batch 8 --steps ${STEPS}`;

let cluster: SlurmCluster | null = null;
const c = (): SlurmCluster => {
  if (!cluster) throw new Error('no Slurm cluster (test.before failed)');
  return cluster;
};

test.before(async () => {
  cluster = await SlurmCluster.start();
});

test.after.always(async () => {
  // normally stopped by the last test; here too when a test failed before it
  await cluster?.remove();
});

test.serial("both examples' #SBATCH lines are ones sbatch takes (sbatch --test-only), and the paper example refuses to start without its data folder", async (t) => {
  for (const f of ['alexnet.sbatch', 'alexnet-paper.sbatch']) {
    const r = await run('sbatch', ['--test-only', ...SBATCH_HERE, path.join(repo, 'examples', 'slurm', f)], c().env, 30_000);
    t.is(r.code, 0, `${f}: ${r.stderr}`);
    t.regex(r.stderr, /to start at/);
  }
  const { ALEXNET_DATA: _, ...noData } = c().env;
  const out = path.join(c().dir, 'paper.out');
  const r = await run('sbatch', ['--parsable', ...SBATCH_HERE, `--output=${out}`, path.join(repo, 'examples', 'slurm', 'alexnet-paper.sbatch')], noData, 30_000);
  t.is(r.code, 0, r.stderr);
  const end = await c().waitJob(r.stdout.trim(), 'ended', (j) => ENDED.has(j.state), 60_000, out);
  t.is(end.state, 'FAILED');
  t.regex(fs.readFileSync(out, 'utf8'), /set ALEXNET_DATA to the ImageNet-style folder/);
});

let straight: Map<number, number> | null = null;

test.serial('the example batch script trains to its last step as a three-task job step: roles from SLURM_PROCID, rendezvous and token in the run folder', async (t) => {
  const { id, runDir, out } = await c().submit(t, 'straight', TRAIN);
  const end = await c().waitJob(id, 'ended', (j) => ENDED.has(j.state), JOB_TIMEOUT_MS, out);
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
  const { id, runDir, out } = await c().submit(t, name, TRAIN);
  // well into the run, long before its end (read as text: the line being written may be incomplete)
  const until = Date.now() + JOB_TIMEOUT_MS;
  const metrics = path.join(runDir, 'metrics.jsonl');
  for (let look = 0; !(fs.existsSync(metrics) && /"event":"step","step":([5-9]|\d\d+),/.test(fs.readFileSync(metrics, 'utf8'))); look++) {
    if (Date.now() > until) throw new Error(`job ${id} logged no step 5 within ${JOB_TIMEOUT_MS / 1000} s:\n${tail(out)}`);
    // the job's state every 2 s (scontrol takes a while on a loaded machine): the log every 0.1 s
    if (look % 20 === 0) {
      const j = await c().jobInfo(id);
      if (j && ENDED.has(j.state)) throw new Error(`job ${id} ended (${j.state}) before step 5:\n${tail(out)}`);
    }
    await sleep(100);
  }
  await interrupt(id);
  const output = await c().requeuedToTheEnd(t, id, out);

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
    const r = await run('scontrol', ['requeue', id], c().env, 20_000);
    t.is(r.code, 0, `scontrol requeue: ${r.stderr}`);
  });
});

test.serial("SIGTERM to the step before the time limit (what --signal=TERM@120 sends; here scancel --signal): checkpoint, exit 143, the script requeues the job, which resumes with the uninterrupted run's losses", async (t) => {
  const output = await interrupted(t, 'signalled', async (id) => {
    // without --batch or --full: the step's processes only, not the batch script, as --signal does
    const r = await run('scancel', ['--signal=TERM', id], c().env, 20_000);
    t.is(r.code, 0, `scancel --signal=TERM: ${r.stderr}`);
  });
  t.regex(output, new RegExp(`^2: alexnet coordinator: stopped \\(SIGTERM\\) after step \\d+ of ${STEPS}; checkpoint `, 'm'));
  // what continues it is a new job step, not a coordinator against workers that went with this one
  t.regex(output, /^2: alexnet coordinator: stopped \(SIGTERM\) after step \d+ of \d+; checkpoint \S+: `srun --ntasks=3 alexnet slurm --resume \S+` continues the run$/m);
  t.notRegex(output, /alexnet coordinator --resume \S+ --workers/);
  t.regex(output, /^srun: error: \S+: task 2: Exited with exit code 143$/m);
  t.regex(output, /stopped with a checkpoint before the time limit: requeueing job \d+$/m);
});

test.serial('the example batch script refuses a value of ALEXNET_GPU_REQUEUES that is not a whole number before the job step starts', async (t) => {
  const { id, out } = await c().submit(t, 'gpu-requeues-bad', TRAIN, { ALEXNET_GPU_REQUEUES: 'three' });
  const end = await c().waitJob(id, 'ended', (j) => ENDED.has(j.state), JOB_TIMEOUT_MS, out);
  const output = fs.readFileSync(out, 'utf8');
  t.is(end.state, 'FAILED', output);
  t.is(end.exitCode, '2:0', output);
  t.regex(output, /ALEXNET_GPU_REQUEUES=three: give a whole number of requeues \(0: none\)/);
  t.notRegex(output, /alexnet slurm: task/, 'no task started');
});

test.serial('a job step whose task fails (a training option refused) ends the job as failed, not requeued, whether srun ended the others (143) or every task failed by itself', async (t) => {
  const { id, out } = await c().submit(t, 'bad-option', `${TRAIN} --lr-schedule bogus`);
  // a requeued job waits in the queue (pending, restarts 1): that, or its end
  const end = await c().waitJob(id, 'ended or requeued', (j) => ENDED.has(j.state) || j.restarts > 0, JOB_TIMEOUT_MS, out);
  const output = fs.readFileSync(out, 'utf8');
  t.is(end.restarts, 0, output);
  t.is(end.state, 'FAILED', output);
  t.regex(output, /--lr-schedule must be/);
  t.notRegex(output, /: requeueing job/);
  t.regex(output, /not requeueing job \d+; the job fails/);
});

test.serial('the daemons stop and leave nothing running', async (t) => {
  t.deepEqual(Object.keys(c().daemonPids).sort(), ['munged', 'slurmctld', 'slurmd']);
  const r = await c().stop();
  t.is(r.code, 0, r.stderr);
  for (const [name, pid] of Object.entries(c().daemonPids)) t.false(alive(pid), `${name} (pid ${pid}) still running`);
});
