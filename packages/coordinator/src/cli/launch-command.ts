/** `alexnet launch`: the two workers and the coordinator on this machine, in one command. */
import type { CommandModule } from 'yargs';
import { checkEnvSettings, getPreset, surveyAdapters } from '@alexnet-mp/core';
import { colocatedThreads, planCpus, planDevices, threadsLine, workerNodeFlags } from '../launch-devices.js';
import { launch } from '../launch.js';
import { checkMemoryFits, checkMessageFits } from './batch-fit.js';
import { UserError } from './errors.js';
import { checkPortFree } from './port-check.js';
import { launchSecurity, launchSecurityOptions, toolCredentials, type SecurityArgs } from './security-options.js';
import { checkRecoveryArgs, recoveryOptions, type RecoveryArgs } from './recovery-options.js';
import { DEFAULT_PRESET, backendOption, checkRunArgs, checkThreads, fallbackOption, parseDuration, runOptions, type RunArgs } from './options.js';
import { checkRunFiles, resolvePreset, resumeTarget } from '../resume.js';
import { checkCacheFolder, checkDataForRun, evaluationsAsked } from './data-check.js';
import { checkNotInUse, prepareRunDir } from '../run-dir.js';
import { childArgs } from './launch-args.js';
import { checkUiArgs, uiArgsToForward, uiOptions, type UiArgs } from './ui-options.js';
import { checkInspectServeArgs, inspectArgsToForward, inspectServeOptions, type InspectServeArgs } from './inspect-options.js';
import { surviveLostOutput } from './output-gone.js';
import { stopBeforeStart } from './early-stop.js';
import { COMMAND_LIST } from './command-list.js';

interface Args extends RunArgs, RecoveryArgs, UiArgs, SecurityArgs, InspectServeArgs {
  backend: string;
  threads?: number;
  'pin-cpus': boolean;
  host: string;
  ports: string;
  'on-fallback': string;
}

export const launchCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['launch'],
  builder: (y) =>
    y
      .usage(
        '$0 launch [options]\n\nStarts worker 0, worker 1 (on free ports) and the coordinator, prefixes their output ' +
          '([worker0], [worker1], [coord]) and stops them all at the end. ' +
          'A worker that dies, or a coordinator killed by a signal (the out-of-memory killer, a crash), is started again and the run continues from its last checkpoint (--max-restarts in a row; needs --run-dir for the coordinator). ' +
          'Ctrl-C (or SIGTERM) ends the run after the step in progress, with a checkpoint when the run writes them (--run-dir), so that --resume continues it; ' +
          'a second Ctrl-C stops everything at once. ' +
          'On webgpu (and auto) each worker gets a GPU of its own (--device 0 and --device 1) where the host has two or more; with one GPU both share it, and launch says so. ' +
          'On CPUs (webasm, or auto without a GPU) each worker runs its kernels on half the cores (--threads), pinned to them on Linux (--no-pin-cpus to leave that to the scheduler). ' +
          'The default (preset tiny, 20 steps of 16 images) takes a few seconds on two CPU cores; ' +
          '--preset cifar --steps 5 --batch 16 about ten seconds.',
      )
      .options({
        ...runOptions,
        ...uiOptions,
        ...inspectServeOptions,
        backend: backendOption,
        'on-fallback': fallbackOption,
        threads: { type: 'number', describe: "webasm: each worker's kernel threads (default: half this machine's cores, at least 1: the two workers share them); a GPU and the cpu mode ignore it" },
        'pin-cpus': {
          type: 'boolean',
          default: true,
          describe: 'Linux, CPU workers (webasm, cpu): worker 0 on the lower half of the cores, worker 1 on the upper half (worker --cpus); --no-pin-cpus leaves them to the scheduler',
        },
        host: { type: 'string', default: '127.0.0.1', describe: 'address the workers listen on' },
        ports: { type: 'string', default: '0,0', describe: "the workers' ports, tower 0's first (0: the OS picks a free one)" },
        ...launchSecurityOptions,
        ...recoveryOptions,
      })
      .example('$0 launch', 'tiny preset, 20 steps: a progress bar on a terminal, else a JSON line a step on stdout')
      .example('$0 launch --preset cifar --steps 5 --backend webasm --run-dir runs/c1', 'a few cifar steps, logs and metrics in runs/c1')
      .example('$0 launch --steps 100 --eval-every 20 --eval-batch 32', 'held-out loss and top-1/top-5 error every 20 steps')
      .example('$0 launch --preset cifar --data cifar10 --epochs 30 --lr-schedule steps:15,25 --run-dir runs/c10', 'CIFAR-10 (downloaded once), evaluation and a checkpoint at each epoch end')
      .example('$0 launch --resume runs/c10', 'continue that run from its latest checkpoint')
      .example('$0 launch --resume runs/c10 --stop-after 2h', 'train for two hours, then write a checkpoint and exit (Ctrl-C does the same at once)')
      .example('$0 launch --steps 2000 --eval-every 50 --ui-port 8080', 'with the dashboard at http://127.0.0.1:8080/') as never,
  handler: async (a) => {
    // the run goes on when nobody reads its output any more (the terminal closed, `| tee` killed): RUN_DIR keeps it
    surviveLostOutput();
    // a signal before the processes start stops at once, saying so, the run folder's lock removed (early-stop.ts)
    const early = stopBeforeStart((l) => process.stderr.write(`[launch] ${l}\n`));
    // --resume RUN_DIR, or one of its checkpoints (resumeTarget): from here on the run folder
    if (a.resume !== undefined) a.resume = resumeTarget(a.resume);
    // a run still training is said to be so before its checkpoints are read
    if (a.resume !== undefined) checkNotInUse(a.resume);
    const preset = getPreset(resolvePreset(a.preset, a.resume, DEFAULT_PRESET)).name;
    checkRunArgs(a);
    // an ALEXNET_* setting the workers' kernels would refuse at the first step
    checkEnvSettings();
    // what the coordinator would refuse once the workers are up (no data folder, a resumed run's batch, seed or preset)
    const { nothingToDo, saved } = checkRunFiles(a, getPreset(preset));
    // a resumed run on another data set, or more classes than the preset has outputs: its classes listed (nothing decoded) and refused before anything starts
    await checkDataForRun(a.data, saved, preset, evaluationsAsked(a));
    checkCacheFolder(a.data, a['cache-dir']);
    checkRecoveryArgs(a);
    checkUiArgs(a);
    checkInspectServeArgs(a);
    checkThreads(a.threads);
    if (nothingToDo) {
      // the whole command line checked, nothing is started
      process.stderr.write(`[launch] nothing to do: ${nothingToDo}\n`);
      return;
    }
    await checkPortFree(a['ui-host'], a['ui-port'], '--ui-port');
    await checkPortFree(a['inspect-host'], a['inspect-port'], '--inspect-port');
    const ports = a.ports.split(',').map((s) => Number(s.trim()));
    if (ports.length !== 2 || ports.some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) throw new UserError(`--ports must be two ports 0..65535 separated by a comma, got "${a.ports}"`);
    if (ports[0] === ports[1] && ports[0] !== 0) throw new UserError(`--ports ${a.ports} gives both workers port ${ports[0]}: give two ports (0: the OS picks a free one)`);
    // a port another program holds: said now, before any process starts
    for (const p of ports) await checkPortFree(a.host, p, '--ports');
    // the children authenticate each other: a shared token (random per launch unless given), and mutual TLS with --tls DIR
    const security = launchSecurity(a);
    const { workerArgs, coordinatorArgs: runArgs, batch, maxBatch } = childArgs(a, preset, security.args);
    checkMessageFits(getPreset(preset), maxBatch, a.batch !== undefined && maxBatch === batch ? '--batch' : 'the largest batch (training or evaluation)');
    const coordinatorArgs = [...runArgs, ...uiArgsToForward(a), ...inspectArgsToForward(a)];
    // the run directory: made and locked for this launch (its coordinator works under the lock), refused when it holds another run's checkpoints (run-dir.ts)
    const runDir = a['run-dir'] ?? a.resume;
    if (runDir !== undefined) await prepareRunDir({ runDir, resume: a.resume, overwrite: a.overwrite, command: 'alexnet launch', info: (l) => process.stderr.write(`[launch] ${l}\n`) });
    // with the inspection service, `alexnet inspect --coordinator` needs the run's credentials: launch says which
    const tool = a['inspect-port'] !== undefined ? toolCredentials(a, security, a['run-dir'] ?? a.resume) : null;
    // one GPU per worker where the host has two; both on the one GPU otherwise (launch-devices.ts)
    const gpuPlan = planDevices(a.backend, a.backend === 'webgpu' || a.backend === 'auto' ? await surveyAdapters() : []);
    // both workers on this machine's memory unless on a GPU (whose own memory the worker's kernels check)
    if (gpuPlan.devices === null) checkMemoryFits(getPreset(preset), batch, 2, '--batch');
    // on CPUs (webasm) the two workers share this machine's cores: half each (launch-devices.ts); gpu.js's cpu mode
    // has no worker threads, and a GPU's workers need none
    const onCpuCores = gpuPlan.devices === null && (a.backend === 'webasm' || a.backend === 'auto');
    const threads = onCpuCores ? (a.threads ?? colocatedThreads()) : null;
    // and each on cores of its own (launch-devices.ts planCpus): gpu.js's cpu mode computes on the worker's thread too
    const cpuPlan = planCpus(gpuPlan.devices === null && a.backend !== 'webgpu', a['pin-cpus']);
    const ignored = a.threads !== undefined && !onCpuCores ? `--threads ${a.threads} ignored: the workers run ${a.backend === 'cpu' ? "gpu.js's cpu mode, which has no worker threads" : 'on a GPU'}` : null;
    const r = await launch({
      workerArgs: threads === null ? workerArgs : [...workerArgs, '--threads', String(threads)],
      workerNodeArgs: workerNodeFlags(threads),
      coordinatorArgs,
      devices: gpuPlan.devices,
      cpus: cpuPlan.cpus,
      deviceLines: [gpuPlan.line, threads === null ? null : threadsLine(threads, a.threads !== undefined), cpuPlan.line, ignored].filter((l) => l !== null),
      host: a.host,
      ports: [ports[0]!, ports[1]!],
      runDir,
      maxRestarts: a['max-restarts'],
      stopAfterS: a['stop-after'] !== undefined ? parseDuration(a['stop-after'], 'stop-after') : undefined,
      env: security.env,
      toolArgs: tool?.args,
      onSignalsTaken: () => early.dispose(),
    });
    tool?.cleanup();
    process.exit(r.code);
  },
};
