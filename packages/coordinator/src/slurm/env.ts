/**
 * What one task of a Slurm job step is, read from the environment Slurm gives it: which of the run's three
 * processes it runs (by SLURM_PROCID), where, in which job and attempt, and the GPUs and CPUs it was given.
 */
import fs from 'node:fs';
import os from 'node:os';

/** A task started outside a Slurm step, or a step that is not one run's three tasks: the user's to fix. */
export class SlurmSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SlurmSetupError';
  }
}

/** Task 0 runs worker 0, task 1 worker 1, task 2 the coordinator. */
export type SlurmRole = { readonly kind: 'worker'; readonly tower: 0 | 1 } | { readonly kind: 'coordinator' };

export interface SlurmTask {
  /** SLURM_PROCID: the task's rank in the step, 0..2. */
  readonly procid: number;
  /** SLURM_LOCALID: its rank among the step's tasks on its node. */
  readonly localid: number;
  readonly jobId: string;
  readonly stepId: string;
  /** SLURM_RESTART_COUNT: 0 on the first run of the job, n after its n-th requeue. */
  readonly restartCount: number;
  /** The node this task runs on (SLURMD_NODENAME, else the host name). */
  readonly node: string;
  /** The step's nodes as Slurm writes them (SLURM_STEP_NODELIST, else SLURM_JOB_NODELIST), e.g. "gpu[01-02]". */
  readonly nodelist: string | null;
  readonly role: SlurmRole;
  /**
   * The GPUs Slurm gave the task, by their index on the node (SLURM_STEP_GPUS, else SLURM_JOB_GPUS, else
   * CUDA_VISIBLE_DEVICES when it is numeric); empty: none.
   */
  readonly gpus: readonly number[];
  /** The CPUs the task may run on (Cpus_allowed_list of /proc/self/status), e.g. "0-3"; null where unknown. */
  readonly cpus: string | null;
}

const ROLES: readonly SlurmRole[] = [{ kind: 'worker', tower: 0 }, { kind: 'worker', tower: 1 }, { kind: 'coordinator' }];

/** The role's name in messages and file names: worker0, worker1, coordinator. */
export const roleName = (r: SlurmRole): string => (r.kind === 'worker' ? `worker${r.tower}` : 'coordinator');

function intVar(env: NodeJS.ProcessEnv, name: string, required: boolean): number | null {
  const v = env[name];
  if (v === undefined || v === '') {
    if (required) throw new SlurmSetupError(`${name} is not set: \`alexnet slurm\` runs as a task of a Slurm job step (srun --ntasks=3 ... alexnet slurm ...), not on its own`);
    return null;
  }
  if (!/^\d+$/.test(v)) throw new SlurmSetupError(`${name} is "${v}", not a number: is this a Slurm job step?`);
  return Number(v);
}

/** A list of GPU indices ("0,1", "2"); null when the variable is unset, empty, or names GPUs by UUID ("GPU-8c2e...", "MIG-..."). */
export function parseGpuList(v: string | undefined): number[] | null {
  if (v === undefined || v.trim() === '' || v.trim() === 'NoDevFiles') return null;
  const parts = v.split(',').map((s) => s.trim());
  if (!parts.every((s) => /^\d+$/.test(s))) return null;
  return parts.map(Number);
}

function allowedCpus(): string | null {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? m[1]! : null;
  } catch {
    return null;
  }
}

/** This task, from `env`; a SlurmSetupError saying what is missing or wrong outside a three-task step. */
export function slurmTask(env: NodeJS.ProcessEnv = process.env): SlurmTask {
  const procid = intVar(env, 'SLURM_PROCID', true)!;
  const stepId = env.SLURM_STEP_ID ?? env.SLURM_STEPID;
  // the batch script has SLURM_PROCID 0 but is no task of a step: it would wait as worker 0 for a coordinator that never comes
  if (stepId === undefined || stepId === '') throw new SlurmSetupError('SLURM_STEP_ID is not set: this is the batch script itself, not a task of a job step; start `alexnet slurm` with srun --ntasks=3');
  const ntasks = intVar(env, 'SLURM_STEP_NUM_TASKS', false) ?? intVar(env, 'SLURM_NTASKS', false);
  if (ntasks !== null && ntasks !== 3) {
    throw new SlurmSetupError(`this job step has ${ntasks} tasks; a run takes exactly 3 (worker 0, worker 1, the coordinator): srun --ntasks=3 (sbatch --ntasks=3)`);
  }
  const role = ROLES[procid];
  if (!role) throw new SlurmSetupError(`SLURM_PROCID is ${procid}; a run has tasks 0, 1 and 2 (srun --ntasks=3)`);
  const jobId = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  if (!jobId) throw new SlurmSetupError('SLURM_JOB_ID is not set: is this a Slurm job step?');
  return {
    procid,
    localid: intVar(env, 'SLURM_LOCALID', false) ?? 0,
    jobId,
    stepId,
    restartCount: intVar(env, 'SLURM_RESTART_COUNT', false) ?? 0,
    node: env.SLURMD_NODENAME || os.hostname(),
    nodelist: env.SLURM_STEP_NODELIST || env.SLURM_JOB_NODELIST || env.SLURM_NODELIST || null,
    role,
    gpus: parseGpuList(env.SLURM_STEP_GPUS) ?? parseGpuList(env.SLURM_JOB_GPUS) ?? parseGpuList(env.CUDA_VISIBLE_DEVICES) ?? [],
    cpus: allowedCpus(),
  };
}
