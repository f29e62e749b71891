/**
 * A worker task that loses its GPU under Slurm (here gpu.js's device destroyed under the worker,
 * test/fixtures/lose-gpu-device.mjs): the worker exits 75, Slurm ends the job step, and the example batch script
 * (examples/slurm/alexnet.sbatch) reads the 75 in the worker's exit file and requeues the job, which resumes from
 * the latest checkpoint with the losses of an uninterrupted run; after ALEXNET_GPU_REQUEUES requeues of one job it
 * stops requeueing and says why. webgpu only (ALEXNET_TEST_BACKEND=webgpu: the software adapter of
 * scripts/lavapipe.sh in `npm test`), on the one-node cluster of slurm-cluster.ts.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { alexnet, alive, losingGpuDevice, runEvents, stepLosses, tempDir } from './helpers.js';
import { ENDED, JOB_TIMEOUT_MS, SlurmCluster, workersGone } from './slurm-cluster.js';

const webgpu = process.env.ALEXNET_TEST_BACKEND === 'webgpu';
const serial = webgpu ? test.serial : test.skip;
const STEPS = 30;
const TRAIN = `--preset tiny --backend webgpu --batch 8 --seed 4 --steps ${STEPS} --checkpoint-every 5`;

let cluster: SlurmCluster | null = null;
const c = (): SlurmCluster => {
  if (!cluster) throw new Error('no Slurm cluster (test.before failed)');
  return cluster;
};

test.before(async () => {
  if (webgpu) cluster = await SlurmCluster.start();
});

test.after.always(async () => {
  await cluster?.remove();
});

serial("a worker that loses its GPU exits 75; the batch script requeues the job, which resumes from the latest checkpoint with an uninterrupted run's losses", async (t) => {
  const straight = tempDir(t, 'alexnet-slurm-gpu-');
  const a = alexnet(['launch', ...TRAIN.split(' '), '--run-dir', straight]);
  t.is((await a.exited).code, 0, a.output());

  const marks = tempDir(t, 'alexnet-slurm-gpu-');
  // the 300th submit of a worker falls after the checkpoint of step 5 (about 27 submits a step here)
  const { id, runDir, out } = await c().submit(t, 'gpu-lost', TRAIN, losingGpuDevice(path.join(marks, 'device-lost-by'), 300));
  const output = await c().requeuedToTheEnd(t, id, out);
  t.true(fs.existsSync(path.join(marks, 'device-lost-by')), 'a device was lost');
  t.regex(output, /^[01]: alexnet worker [01]: the GPU device was lost \(destroyed/m);
  t.regex(output, /^[01]: alexnet worker [01]: exiting with code 75 so that it can be started again \(the example batch scripts of examples\/slurm requeue the job, up to ALEXNET_GPU_REQUEUES times; it resumes from the latest checkpoint\)$/m);
  const lost = new RegExp(`GPU lost on (\\S+) \\((worker[01])\\): requeueing job ${id} to continue from the latest checkpoint \\(requeue 1 of at most 3\\)$`, 'm').exec(output);
  t.truthy(lost, 'the requeue line');
  t.notRegex(output, /before the time limit/, 'told apart from the time limit');
  const lossLog = fs.readFileSync(path.join(runDir, 'slurm', 'gpu-lost'), 'utf8').trim().split('\n');
  t.is(lossLog.length, 1);
  // the worker and the node its task ran on (its .node file in the attempt's folder)
  t.regex(lossLog[0]!, new RegExp(`^${id} 0 \\S+ ${lost?.[2]} ${lost?.[1]}$`));
  t.regex(output, new RegExp(`^${lost?.[2]?.at(-1)}: alexnet slurm: task \\d \\(${lost?.[2]}\\) on ${lost?.[1]}: `, 'm'));

  const runs = runEvents(runDir).filter((e) => e.event === 'run');
  t.is(runs.length, 2);
  t.truthy(runs[1]!.resumed_from, 'resumed from a checkpoint, not from step 0');
  t.true(runs[1]!.start_step! >= 5, `resumed at step ${runs[1]!.start_step}`);
  t.is(stepLosses(runDir).length, STEPS);
  t.deepEqual(stepLosses(runDir), stepLosses(straight), 'every step, those trained again after the requeue included, as in the uninterrupted run');
  workersGone(t, out);
});

serial('after ALEXNET_GPU_REQUEUES requeues of one job for lost GPUs the batch script stops requeueing, says why and exits 75', async (t) => {
  const marks = tempDir(t, 'alexnet-slurm-gpu-');
  const { id, runDir, out } = await c().submit(t, 'gpu-lost-capped', TRAIN, { ...losingGpuDevice(path.join(marks, 'device-lost-by'), 300), ALEXNET_GPU_REQUEUES: '0' });
  const end = await c().waitJob(id, 'ended', (j) => ENDED.has(j.state), JOB_TIMEOUT_MS, out);
  const output = fs.readFileSync(out, 'utf8');
  t.is(end.state, 'FAILED', output);
  t.is(end.exitCode, '75:0', output);
  t.is(end.restarts, 0);
  t.regex(output, new RegExp(`GPU lost on \\S+ \\(worker[01]\\): not requeueing job ${id} again \\(1 of its runs lost a GPU; ALEXNET_GPU_REQUEUES=0\\); check those GPUs`));
  t.notRegex(output, /: requeueing job/);
  // the checkpoints written before the loss are there for the next submission's --resume
  t.true(fs.readdirSync(path.join(runDir, 'checkpoints')).some((f) => f.endsWith('.safetensors')));
  workersGone(t, out);
});

serial('the daemons stop and leave nothing running', async (t) => {
  t.deepEqual(Object.keys(c().daemonPids).sort(), ['munged', 'slurmctld', 'slurmd']);
  const r = await c().stop();
  t.is(r.code, 0, r.stderr);
  for (const [name, pid] of Object.entries(c().daemonPids)) t.false(alive(pid), `${name} (pid ${pid}) still running`);
});
