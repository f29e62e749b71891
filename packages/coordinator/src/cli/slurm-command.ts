/**
 * `alexnet slurm`: one task of a three-task Slurm job step (`srun --ntasks=3 alexnet slurm ...`). Task 0
 * runs worker 0, task 1 worker 1, task 2 the coordinator; they meet through files in the run folder
 * (slurm/rendezvous.ts) and share a random token made for the attempt.
 */
import os from 'node:os';
import path from 'node:path';
import yargs, { type CommandModule } from 'yargs';
import { getPreset, surveyAdapters } from '@alexnet-mp/core';
import { formatAddress } from '@alexnet-mp/worker';
import { UserError } from './errors.js';
import { failureLine } from './failure-line.js';
import { optionsOf } from './unknown-option.js';
import { DEFAULT_PRESET, backendOption, checkAddress, checkRunArgs, checkThreads, fallbackOption, runOptions, type RunArgs } from './options.js';
import { checkRecoveryArgs, recoveryOptions, type RecoveryArgs } from './recovery-options.js';
import { launchSecurityOptions, tokenFrom, type SecurityArgs } from './security-options.js';
import { childArgs } from './launch-args.js';
import { serveOnFirstSignal, serveWorker, workerCommand, type WorkerArgs, type WorkerHooks } from './worker-command.js';
import { coordinatorCommand } from './coordinator-command.js';
import { courseBegunFrom, pinnedCheckpoint, pinnedStep, resolvePreset, resumeTarget, unpinCheckpoint } from '../resume.js';
import { cpuWorkerArgs } from '../launch-devices.js';
import { SlurmSetupError, roleName, slurmTask, type SlurmTask } from '../slurm/env.js';
import { chooseGpu } from '../slurm/gpu.js';
import { RendezvousError, jobTokenFile, readEntry, removeEndedAttempts, rendezvousDir, waitForEntries, writeAtomic, writeExit } from '../slurm/rendezvous.js';
import { COMMAND_LIST } from './command-list.js';

interface Args extends RunArgs, RecoveryArgs, SecurityArgs {
  backend: string;
  threads?: number;
  'on-fallback': string;
  host: string;
  'rendezvous-timeout': number;
}

export const slurmCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['slurm'],
  builder: (y) =>
    y
      .usage(
        'srun --ntasks=3 $0 slurm --run-dir DIR [options]\n\nRun in each of the three tasks of a job step. Each task takes its role from SLURM_PROCID; ' +
          'the workers listen on ports the OS picks and write HOST:PORT into DIR/slurm/, where the coordinator finds them (DIR must be on storage every node sees); ' +
          'the three share a random token made for the job, in a file only the job\'s user can read. A worker opens the GPU Slurm gave its task (--gres=gpu, --gpus-per-task). ' +
          'SIGTERM (sbatch --signal=TERM@SECONDS, scancel, scontrol requeue) ends the run after the step in progress with a checkpoint; --resume DIR continues it. ' +
          'examples/slurm/ has complete batch scripts; docs/cluster.md explains them.',
      )
      .options({
        ...runOptions,
        backend: backendOption,
        'on-fallback': fallbackOption,
        threads: { type: 'number', describe: "webasm: each worker's kernel threads (worker --threads; default: one per CPU the task may run on)" },
        host: { type: 'string', default: '0.0.0.0', describe: 'address the workers listen on (they announce their host name and port)' },
        'rendezvous-timeout': { type: 'number', default: 300, describe: "seconds the coordinator waits for the workers' addresses" },
        ...launchSecurityOptions,
        ...recoveryOptions,
      }) as never,
  handler: async (a) => {
    let task: SlurmTask;
    try {
      task = slurmTask();
    } catch (e) {
      throw e instanceof SlurmSetupError ? new UserError(e.message) : e;
    }
    if (a.resume !== undefined) a.resume = resumeTarget(a.resume);
    // a requeued job goes on from its newest checkpoint once the course from the one its script names has begun
    // (its first run set the later ones aside); requeued before that, it starts from the named one again
    const chosen = a.resume !== undefined && task.restartCount > 0 ? pinnedCheckpoint(a.resume) : undefined;
    if (chosen !== undefined && courseBegunFrom(a.resume!, pinnedStep(a.resume!)!)) {
      unpinCheckpoint(a.resume!);
      process.stderr.write(`alexnet slurm: requeued: resuming from the newest checkpoint of ${a.resume}, not ${chosen} (where the job's first run started)\n`);
    }
    const overwrite = overwriteOfAttempt(a.overwrite, task.restartCount);
    a.overwrite = overwrite.overwrite;
    if (overwrite.note) process.stderr.write(`alexnet slurm: ${overwrite.note}\n`);
    const runDir = a['run-dir'] ?? a.resume;
    if (runDir === undefined) throw new UserError('give --run-dir DIR (or --resume DIR), a folder every node of the job sees: the tasks meet there, and the checkpoints a requeued job resumes from are kept there');
    const preset = getPreset(resolvePreset(a.preset, a.resume, DEFAULT_PRESET)).name;
    checkRunArgs(a);
    checkRecoveryArgs(a);
    checkThreads(a.threads);
    if (!(a['rendezvous-timeout'] > 0)) throw new UserError(`--rendezvous-timeout must be > 0 seconds, got ${a['rendezvous-timeout']}`);
    const name = roleName(task.role);
    const dir = rendezvousDir(path.resolve(runDir), task);
    process.on('exit', (code) => writeExit(dir, name, code));
    // until the worker or the coordinator takes them over: a signal ends this task, saying so in its exit file
    for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.on(sig, () => process.listenerCount(sig) === 1 && process.exit(code));
    const say = (line: string) => process.stderr.write(`alexnet slurm: task ${task.procid} (${name}) on ${task.node}: ${line}\n`);
    say(`job ${task.jobId}${task.restartCount > 0 ? ` (requeued ${task.restartCount}x)` : ''}, step ${task.stepId} on ${task.nodelist ?? task.node}; CPUs ${task.cpus ?? 'unknown'}; rendezvous in ${dir}`);
    const { workerArgs, coordinatorArgs: runArgs } = childArgs(a, preset, securityArgs(a, dir));
    // launch's child arguments leave --overwrite out (a coordinator it restarts resumes); here it runs once an attempt
    const coordinatorArgs = a.overwrite ? [...runArgs, '--overwrite'] : runArgs;
    try {
      if (task.role.kind === 'worker') await workerTask(a, task, task.role.tower, dir, workerArgs, say);
      else await coordinatorTask(a, dir, coordinatorArgs, say);
    } catch (e) {
      throw e instanceof RendezvousError ? new UserError(e.message) : e;
    }
  },
};

/**
 * --overwrite is the job's first attempt's: it starts the run over in its folder. A requeued attempt goes on
 * from what the first wrote (the example scripts resume it), so there it is dropped, and said.
 */
export function overwriteOfAttempt(overwrite: boolean | undefined, restartCount: number): { overwrite: boolean; note: string | null } {
  if (!overwrite) return { overwrite: false, note: null };
  if (restartCount === 0) return { overwrite: true, note: null };
  return { overwrite: false, note: `requeued (${restartCount}x): --overwrite applied to the job's first run only; this one goes on from what that run wrote` };
}

/** The credentials options of all three: --tls DIR and the user's token if given, else the attempt's random token. */
function securityArgs(a: SecurityArgs, dir: string): string[] {
  const tls = a.tls !== undefined ? ['--tls', a.tls] : [];
  if (a['token-file'] !== undefined) return [...tls, '--token-file', a['token-file']];
  // one word: a token that starts with '-' (base64url) is not read as flags
  if (a.token !== undefined) return [...tls, `--token=${a.token}`];
  // ALEXNET_TOKEN: each process reads it from the environment srun passes on
  if (tokenFrom({}) !== undefined) return tls;
  return [...tls, '--token-file', jobTokenFile(dir)];
}

async function workerTask(a: Args, task: SlurmTask, tower: 0 | 1, dir: string, workerArgs: string[], say: (l: string) => void): Promise<void> {
  const gpu = (a.backend === 'webgpu' || a.backend === 'auto') && task.gpus.length > 0 ? chooseGpu(task.gpus, task.localid, await surveyAdapters()) : null;
  if (gpu) say(gpu.line);
  // which node this worker runs on, for the batch script's lines about a lost GPU
  writeAtomic(path.join(dir, `worker${tower}.node`), task.node + '\n', 0o644);
  const hooks: WorkerHooks = {
    // its exit file says 75: the example batch scripts requeue the job (examples/slurm)
    restartedBy: 'the example batch scripts of examples/slurm requeue the job, up to ALEXNET_GPU_REQUEUES times; it resumes from the latest checkpoint',
    onListening: (address, stop) => {
      const host = a.host === '0.0.0.0' || a.host === '::' ? os.hostname() : a.host;
      // an IPv6 host in brackets, as --workers takes it
      const announced = formatAddress({ host, port: Number(address.slice(address.lastIndexOf(':') + 1)) });
      writeAtomic(path.join(dir, `worker${tower}`), announced + '\n', 0o644);
      say(`announced ${announced}`);
      // the run is over when the coordinator has exited
      const poll = setInterval(() => {
        const code = readEntry(dir, 'coordinator.exit');
        if (code === null) return;
        clearInterval(poll);
        stop(`the coordinator exited with code ${code}`);
      }, 500);
    },
    // Slurm signals every task of the step: the first signal is the coordinator's to act on
    onSignal: serveOnFirstSignal(say),
  };
  const argv = ['worker', '--tower', String(tower), '--host', a.host, '--port', '0', ...(gpu?.device != null ? ['--device', String(gpu.device)] : []), ...cpuWorkerArgs(tower, a.threads ?? null, null), ...workerArgs];
  await runCommand({ ...workerCommand, handler: (w: WorkerArgs) => serveWorker(w, hooks) }, argv);
}

async function coordinatorTask(a: Args, dir: string, coordinatorArgs: string[], say: (l: string) => void): Promise<void> {
  removeEndedAttempts(path.dirname(path.dirname(dir)), dir);
  const failedWorker = (): string | null => {
    for (const t of [0, 1]) {
      const code = readEntry(dir, `worker${t}.exit`);
      if (code !== null) return `worker ${t} (task ${t}) exited with code ${code} before it was listening: its lines in the job's output say why`;
    }
    return null;
  };
  const addresses = await waitForEntries(dir, ['worker0', 'worker1'], a['rendezvous-timeout'] * 1000, failedWorker);
  for (const w of addresses) checkAddress(w, 'workers');
  say(`workers at ${addresses.join(' and ')}`);
  // its workers go with this job step: the run goes on in another (the example scripts requeue a job stopped by its time limit)
  const runDir = a['run-dir'] ?? a.resume!;
  await runCommand(coordinatorCommand, ['coordinator', '--workers', addresses.join(','), ...coordinatorArgs, '--continue-with', `srun --ntasks=3 alexnet slurm --resume ${runDir}`]);
}

/** Runs one of the CLI's commands in this process with `argv`, as `alexnet ARGV` would. */
async function runCommand<T>(command: CommandModule<object, T>, argv: string[]): Promise<void> {
  const y = yargs(argv);
  await y
    .command(command)
    .strict()
    .fail((msg, err) => {
      // yargs' report as the one line `alexnet` itself gives (failure-line.ts)
      throw err ?? new UserError(failureLine(msg, optionsOf(y), argv, [String(command.command)]) ?? msg);
    })
    .parseAsync();
}
