/** `alexnet coordinator`: drives two workers through a training run and logs metrics as JSON lines. */
import type { CommandModule } from 'yargs';
import { LrSchedule, getPreset, latestCheckpoint, parseLrSchedule } from '@alexnet-mp/core';
import { PROTOCOL_VERSION, describeSecurity, isRunId, modelHash } from '@alexnet-mp/worker';
import { Coordinator, WorkerFailure } from '../coordinator.js';
import type { EvalMetrics, EvalSet } from '../evaluation.js';
import { checkViewsOfData, givenCacheDir, openTrainingData, runCacheDir } from '../training-data.js';
import { checkResumeArgs, checkStepsWithinEpochs, checkResumedClasses, forgetCourse, pinnedCheckpoint, resumeTarget, setAsideLater, checkpointDir, loadResume, resolvePreset, resumedData, runCadence, runHyper, savedDataOf, type SavedRun } from '../resume.js';
import { Progress, progressBarWanted } from '../progress.js';
import { MetricsLog } from '../metrics-log.js';
import { LOCK_OWNER_ENV, checkNotInUse, prepareRunDir } from '../run-dir.js';
import { evaluationLoggedAfter } from '../run-files.js';
import { UserError } from './errors.js';
import { checkPortFree } from './port-check.js';
import { checkRecoveryArgs, recoveryOptions, type RecoveryArgs } from './recovery-options.js';
import { Recovery } from '../recovery.js';
import { DivergedError } from '../divergence.js';
import { checkUiArgs, uiOptions, type UiArgs } from './ui-options.js';
import { openDashboard, type Dashboard } from '../dashboard/open.js';
import { checkInspectExposure, checkInspectServeArgs, inspectInsecureOption, inspectServeOptions, type InspectServeArgs } from './inspect-options.js';
import { openInspectService } from '../inspect/open.js';
import type { InspectService } from '../inspect/service.js';
import { checkMessageFits } from './batch-fit.js';
import { DEFAULTS, DEFAULT_PRESET, NORMS_EVERY, checkAddress, checkRunArgs, parseDuration, parseMicroBatches, runOptions, type RunArgs } from './options.js';
import { TOKEN_ENV, securityFrom, securityOptions, type SecurityArgs } from './security-options.js';
import { surviveLostOutput, writeOutputTo } from './output-gone.js';
import { signalExitCode } from '../signal-exit.js';
import path from 'node:path';
import readline from 'node:readline';
import { stopBeforeTraining } from './early-stop.js';
import { checkDataForRun, evaluationsAsked } from './data-check.js';
import { errorWords } from '../error-words.js';
import { shortStepsNote } from '../step-tally.js';
import { COMMAND_LIST } from './command-list.js';

interface Args extends RunArgs, RecoveryArgs, UiArgs, SecurityArgs, InspectServeArgs {
  workers: string;
  'run-id'?: string;
  'connect-timeout': number;
  'take-over': boolean;
  'inspect-insecure': boolean;
  'protocol-version': number;
  'exit-with-stdin': boolean;
  'continue-with'?: string;
}

export const coordinatorCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['coordinator'],
  builder: (y) =>
    y
      .usage(
        '$0 coordinator --workers HOST:PORT,HOST:PORT [options]\n\nThe first address is tower 0, the second tower 1. ' +
          'Sends each step its batch (uint8 images and labels) to both workers, which exchange activations and gradients directly; ' +
          'prints one JSON object per line: a "run" event, a "step" event per step, an "eval" event per evaluation (--eval-every), a "done" event.',
      )
      .options({
        workers: { type: 'string', demandOption: true, describe: "the two workers' HOST:PORT, tower 0's first, comma-separated" },
        ...runOptions,
        ...uiOptions,
        ...inspectServeOptions,
        ...inspectInsecureOption,
        'run-id': { type: 'string', describe: 'name of the run: 1..128 printable ASCII characters without spaces (default: time and a random suffix)' },
        'connect-timeout': { type: 'number', default: 30, describe: 'seconds to wait for the workers to answer the handshake (they may still be starting)' },
        'take-over': { type: 'boolean', default: false, describe: "take the workers even if another coordinator's run holds them (that run then fails at its next step)" },
        ...recoveryOptions,
        'protocol-version': { type: 'number', default: PROTOCOL_VERSION, hidden: true, describe: 'speak as if this protocol version (for testing the refusal)' },
        'exit-with-stdin': { type: 'boolean', default: false, hidden: true, describe: 'exit when stdin closes (used by launch)' },
        'continue-with': { type: 'string', hidden: true, describe: 'the command that continues this run, in what it says when it stops or fails (used by slurm: its run goes on in a new job step)' },
        'stop-after-given': { type: 'string', hidden: true, describe: "the --stop-after the run was given, for its messages (launch, restarting a crashed coordinator, gives the time left as --stop-after)" },
        ...securityOptions,
      }) as never,
  handler: async (a) => {
    // --resume RUN_DIR, or one of its checkpoints (resumeTarget): from here on the run folder
    if (a.resume !== undefined) a.resume = resumeTarget(a.resume);
    // a course from a chosen checkpoint, in that run's own folder, starts here: an earlier course's mark goes now,
    // and once both workers are configured the later checkpoints (the course it leaves) are set aside and it is marked
    const newCourse = a.resume !== undefined && pinnedCheckpoint(a.resume) !== undefined && path.resolve(a['run-dir'] ?? a.resume) === path.resolve(a.resume);
    if (newCourse) forgetCourse(a.resume!);
    // a run still training is said to be so before its checkpoints are read
    if (a.resume !== undefined) checkNotInUse(a.resume);
    const spec = getPreset(resolvePreset(a.preset, a.resume, DEFAULT_PRESET));
    checkRunArgs(a);
    checkUiArgs(a);
    checkInspectServeArgs(a);
    await checkPortFree(a['ui-host'], a['ui-port'], '--ui-port');
    await checkPortFree(a['inspect-host'], a['inspect-port'], '--inspect-port');
    const list = a.workers.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (list.length !== 2) throw new UserError(`--workers needs exactly two addresses (tower 0's, then tower 1's), got ${list.length}`);
    const workers = [checkAddress(list[0]!, 'workers'), checkAddress(list[1]!, 'workers')] as const;
    if (workers[0] === workers[1]) throw new UserError(`--workers names ${workers[0]} twice: the two towers need two workers`);
    if (!(a['connect-timeout'] > 0)) throw new UserError('--connect-timeout must be > 0 seconds');
    // the workers' rule (it goes into their log lines), checked here before any worker is asked
    if (a['run-id'] !== undefined && !isRunId(String(a['run-id']))) throw new UserError(`--run-id ${JSON.stringify(String(a['run-id']).slice(0, 140))}: give 1..128 printable ASCII characters without spaces`);
    const security = securityFrom(a, 'coordinator');
    const exposed = checkInspectExposure(a, security !== undefined);
    const deadlines = checkRecoveryArgs(a);
    const info = (line: string) => process.stderr.write(`alexnet coordinator: ${line}\n`);
    // a signal from here until training starts (the run folder locked, the data opened: a first decoding can take
    // long) stops at once, what was decoded kept (early-stop.ts)
    const early = stopBeforeTraining(a['exit-with-stdin'], info);
    if (security) info(`authentication: ${describeSecurity(security)}`);
    if (exposed) info(exposed);

    // ---- the run directory: made, locked for this run (or under launch's lock), refused when it holds another run's checkpoints (run-dir.ts)
    const runDir = a['run-dir'] ?? a.resume;
    if (runDir !== undefined) await prepareRunDir({ runDir, resume: a.resume, overwrite: a.overwrite, command: 'alexnet coordinator', info });

    // ---- what this run is: the command line, or for --resume the checkpoint's run state where the command line is silent
    const resumed = a.resume !== undefined ? loadResume(a.resume, spec, info) : null;
    const saved: SavedRun = resumed?.saved ?? {};
    const plan = saved.plan ?? {};
    if (resumed) checkResumeArgs(a, a.resume!, resumed);
    const batch = a.batch ?? saved.batch ?? DEFAULTS.batch;
    const seed = a.seed ?? resumed?.seed ?? DEFAULTS.seed;
    const hyper = runHyper(a, saved, spec.name);
    let schedule: LrSchedule | null = null;
    if (a['lr-schedule'] !== undefined) {
      const sspec = parseLrSchedule(a['lr-schedule'], hyper.lr);
      // the same schedule as the checkpoint's continues with its state (a plateau's best error and drops)
      const same = saved.lr_schedule && JSON.stringify(saved.lr_schedule.spec) === JSON.stringify(sspec);
      schedule = new LrSchedule(sspec, same ? saved.lr_schedule!.state : undefined);
    } else if (saved.lr_schedule) schedule = new LrSchedule({ ...saved.lr_schedule.spec, base: hyper.lr }, saved.lr_schedule.state);
    const epochs = a.epochs ?? plan.epochs ?? undefined;
    // the checkpoint was written before its evaluation: the evaluation is still due unless the log has it
    const evalLogged = resumed?.saved.eval_due === true ? evaluationLoggedAfter(a.resume!, resumed.file, resumed.step) : null;
    const { checkpointEvery, checkpointMinutes, keep, evalEvery, evalBatch, evalBatches, evalViews } = runCadence(a, plan, batch);
    checkMessageFits(spec, batch, '--batch');

    // the data: the command line's, else (with --resume) the run's own, else synthetic
    const savedData = saved.data_name;
    const fromRun = a.data === undefined ? resumedData(saved) : undefined;
    if (fromRun?.note) info(fromRun.note);
    const dataName = a.data ?? fromRun?.data ?? 'synthetic';
    if (resumed && a.data !== undefined && savedData !== undefined && a.data !== savedData) info(`--data ${a.data}: the run so far was trained on ${savedData}`);
    await checkDataForRun(a.data, resumed ? saved : null, spec.name, evaluationsAsked(a));
    // the cache folder: the command line's, else (resumed) the one the run was given, when it is still there
    const cacheDir = runCacheDir(a['cache-dir'], saved.cache_dir);
    const data = await openTrainingData({ data: dataName, spec, seed, cacheDir, info });
    // the run's own data (no --data) checked once open: its folder may have changed since
    if (resumed && a.data === undefined) checkResumedClasses(saved, data.classes ? [...data.classes] : null, dataName);
    checkViewsOfData(evalViews, data.real);
    const stepsPerEpoch = Math.ceil(data.imagesPerEpoch / batch);
    // epochs exist for real data, and for synthetic data when asked for (--epochs or a schedule by epochs)
    const useEpochs = data.real || epochs !== undefined || schedule !== null;
    const cap = a.steps ?? (epochs === undefined ? plan.steps : undefined);
    const total = Math.min(cap ?? Infinity, epochs !== undefined ? epochs * stepsPerEpoch : Infinity);
    const targetSteps = Number.isFinite(total) ? total : DEFAULTS.steps;
    // --steps alone past the epochs a resumed run planned: refused, not capped at the plan's end in silence
    if (resumed && a.steps !== undefined && a.epochs === undefined && epochs !== undefined) checkStepsWithinEpochs(a.steps, epochs, stepsPerEpoch);
    if (schedule?.spec.kind === 'plateau' && !(evalEvery > 0 || useEpochs)) throw new UserError('--lr-schedule plateau needs evaluations: give --epochs');
    // drops at epochs the run does not reach: said, not silently never done
    if (schedule?.spec.kind === 'steps') {
      const late = schedule.spec.epochs.filter((e) => e * stepsPerEpoch >= targetSteps);
      if (late.length > 0) info(`warning: --lr-schedule: the run ends at step ${targetSteps} (${epochsOf(targetSteps, stepsPerEpoch)}): the rate's drop${late.length === 1 ? '' : 's'} at epoch ${late.join(', ')} never ${late.length === 1 ? 'comes' : 'come'}`);
    }
    // a plateau schedule drops the rate after `patience` epoch-end evaluations that do not improve on the first
    // one's best, for the epochs after: a run with fewer epoch ends before its last step never sees a drop
    if (schedule?.spec.kind === 'plateau' && Math.floor((targetSteps - 1) / stepsPerEpoch) < schedule.spec.patience + 1) {
      const p = schedule.spec.patience;
      info(`warning: --lr-schedule plateau: the run ends at step ${targetSteps} (${epochsOf(targetSteps, stepsPerEpoch)}): the rate drops only after ${p + 1} epoch-end evaluations (the first, then ${p} without improvement) with epochs still to train, so it never drops in this run`);
    }
    let evalSet: EvalSet | null = null;
    if (evalEvery > 0 || epochs !== undefined || (data.real && evalBatches !== undefined)) {
      try {
        evalSet = data.heldOut(evalBatch, evalBatches, evalViews);
      } catch (e) {
        // no held-out split: an error only when evaluations were asked for
        if (evalEvery > 0 || schedule?.spec.kind === 'plateau') throw e;
        info(`no evaluation: ${(e as Error).message}`);
      }
    }
    // options of an evaluation given to a run that has none: said, not silently dropped
    if (evalSet === null) {
      const unused = (['eval-batch', 'eval-batches', 'eval-views'] as const).filter((k) => a[k] !== undefined).map((k) => `--${k}`);
      if (unused.length > 0) info(`warning: ${unused.join(', ')} ${unused.length === 1 ? 'has' : 'have'} nothing to do: this run does no evaluation (give --eval-every N, or --epochs on a data set with a held-out split)`);
    }
    // with a run folder: after the last step, when stopped early, at epoch ends (when epochs are counted) and every --checkpoint-every steps
    const checkpoints = runDir !== undefined;
    const askedToKeep =
      checkpointEvery > 0
        ? `--checkpoint-every ${checkpointEvery}`
        : (a['checkpoint-minutes'] ?? 0) > 0
          ? `--checkpoint-minutes ${a['checkpoint-minutes']}`
          : a['stop-after'] !== undefined
            ? `--stop-after ${a['stop-after']}`
            : null;
    if (!checkpoints && (askedToKeep !== null || data.real || epochs !== undefined)) {
      // options that keep something, or training worth keeping, with nowhere to keep it
      const why =
        askedToKeep === null
          ? 'its weights and metrics are gone when it ends'
          : askedToKeep.startsWith('--stop-after')
            ? `${askedToKeep} stops it with nothing kept to continue from`
            : `${askedToKeep} writes nothing`;
      info(`warning: this run has no --run-dir: ${why} (give --run-dir DIR for checkpoints, metrics.jsonl and --resume)`);
    }
    const startStep = resumed?.step ?? 0;
    const stepsToRun = Math.max(0, targetSteps - startStep);
    if (resumed) info(`resuming from ${resumed.file}: step ${startStep} (epoch ${Math.floor(startStep / stepsPerEpoch)}), ${stepsToRun} more to step ${targetSteps}`);
    if (resumed && evalLogged) info(`the evaluation after step ${resumed.step} is in ${path.join(a.resume!, 'metrics.jsonl')} already: not done again`);
    // the same classes, another number of images (a subset, a copy with images added): the epochs are this data's from here
    const hadPerEpoch = saved.data?.steps_per_epoch;
    if (resumed && useEpochs && typeof hadPerEpoch === 'number' && hadPerEpoch !== stepsPerEpoch) {
      info(`warning: the run had ${hadPerEpoch} steps an epoch, --data ${dataName} gives ${stepsPerEpoch}: epochs count by this data from step ${startStep} on, as if it had been used from the start`);
    }

    const microBatches = parseMicroBatches(a['micro-batches'] ?? '1', batch);
    // the coordinator's lines go above the progress bar once it is up (below), not through it
    let notes: (line: string) => void = info;
    const c = new Coordinator({
      spec,
      workers,
      batch,
      seed,
      hyper,
      microBatches,
      normsEvery: a['norms-every'] ?? NORMS_EVERY,
      queueSteps: a['queue-steps'] !== false,
      source: data.source,
      eval: evalSet ? { every: evalEvery, set: evalSet } : undefined,
      stepsPerEpoch: useEpochs ? stepsPerEpoch : undefined,
      schedule: schedule ?? undefined,
      checkpoint: checkpoints
        ? {
            dir: checkpointDir(runDir!),
            every: checkpointEvery,
            everyMs: checkpointMinutes * 60_000,
            keep,
            extra: () => ({
              // a resumed run keeps its --data as first given (relative paths keep the run folder portable)
              ...savedDataOf(dataName),
              ...(fromRun ? { data_name: savedData } : {}),
              // the mean the workers subtract: `alexnet inspect --run` feeds images to the checkpoint the same way
              input_mean: data.source.inputMean ?? null,
              // the class names in label order: `alexnet export` writes them into the model file
              class_names: data.classes ? [...data.classes] : null,
              // where its data was decoded, when not the default: evaluate, features and inspect --run read it there
              cache_dir: givenCacheDir(cacheDir),
              plan: { steps: targetSteps, epochs: epochs ?? null, checkpoint_every: checkpointEvery, checkpoint_minutes: checkpointMinutes, keep, eval_every: evalEvery, eval_batch: evalBatch, eval_batches: evalBatches ?? null, eval_views: evalViews },
            }),
          }
        : undefined,
      resume: resumed ? { params: resumed.params, step: resumed.step, evalDue: resumed.saved.eval_due === true, evalLogged: evalLogged ?? undefined, file: resumed.file, byTime: resumed.saved.by_time === true } : undefined,
      runId: a['run-id'],
      connectTimeoutMs: a['connect-timeout'] * 1000,
      takeOver: a['take-over'],
      security,
      deadlines,
      protocolVersion: a['protocol-version'],
      info: (l) => notes(l),
    });
    // with a progress bar on the terminal the JSON lines go to RUN_DIR/metrics.jsonl only
    const bar = progressBarWanted();
    if (bar && runDir === undefined) info('the metrics (JSON lines) go to RUN_DIR/metrics.jsonl: give --run-dir to keep them');
    const log = new MetricsLog(runDir, bar ? () => {} : undefined, info);
    const progress = new Progress({ total: targetSteps, start: startStep, batch, info, bar });
    notes = (l) => progress.note(l);
    let dashboard: Dashboard | null = null;
    let inspection: InspectService | null = null;
    if (a['ui-port'] !== undefined) {
      dashboard = await openDashboard({ host: a['ui-host'], port: a['ui-port'], refreshS: a['ui-refresh'], coordinator: c, spec, data, info: (l) => progress.note(l) });
      log.observe((e) => dashboard!.feed.record(e));
    }
    // the command that continues the run: launch's own under launch (which gives --exit-with-stdin), else this one with its workers
    /** This process wrote its run line: its session is in the run's record, and so is how it ends. */
    let runLogged = false;
    /** Its end line (done, failed) is written: a signal in the cleanup after it adds no other. */
    let endLogged = false;
    const continueCommand = a['continue-with'] ?? (a['exit-with-stdin'] ? `alexnet launch --resume ${runDir}` : `alexnet coordinator --resume ${runDir} --workers ${a.workers}`);
    const stop = (why: string, code: number) => {
      progress.stop();
      c.cancel();
      // said in words too (the JSON line may go only to RUN_DIR/metrics.jsonl): what the run can continue from
      const last = runDir !== undefined ? latestCheckpoint(checkpointDir(runDir)) : null;
      const how = !runLogged ? 'stopped before training began' : endLogged ? 'stopped as the run was ending' : recovery?.recovering ? 'stopped at once' : 'stopped at once, the step in progress abandoned';
      info(`${why}: ${how}; ${last ? `the last checkpoint is ${path.basename(last)}: ${continueCommand} continues from it` : runDir !== undefined ? 'no checkpoint was written' : 'nothing was kept (no --run-dir)'}`);
      // a session that never began training (no run line of its own) leaves nothing in the run's record: its
      // stopped line would read as the end of the session before it
      if (runLogged && !endLogged) log.write({ event: 'stopped', reason: why });
      c.close();
      process.exit(code);
    };
    // the first signal during training ends the run after the step in progress, with a checkpoint (stop-early.md);
    // before training, while waiting for a lost worker, or a second time: at once
    let stopCode = 0;
    /** Ends the run after the step in progress, with a checkpoint; false before training or while waiting for a lost worker (nothing to end gracefully). */
    const endRun = (sig: 'SIGINT' | 'SIGTERM' | 'SIGHUP'): boolean => {
      if (!c.isRunning || recovery?.recovering) return false;
      if (stopCode === 0) {
        stopCode = signalExitCode(sig);
        c.requestStop(sig);
        progress.note(`${sig}: ending the run after the step in progress (and the one queued behind it, already on the workers; an evaluation due after it is ${checkpoints ? 'left to the resumed run' : 'not done'})${checkpoints ? ', with a checkpoint' : ''} (${sig} again: stop at once${checkpoints ? ', losing the steps since the last checkpoint' : ''})`);
      }
      return true;
    };
    // this process's own signals: the first ends the run gracefully, a second stops at once
    let signals = 0;
    const onSignal = (sig: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => {
      if (signals++ === 0 && endRun(sig)) return;
      stop(sig, signalExitCode(sig));
    };
    // SIGHUP, the terminal closed: as SIGTERM (a run is not lost with an SSH session)
    // its own handlers first, then the early ones go: a signal pending meanwhile reaches these (early-stop.ts)
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig));
    early.dispose();
    // nobody reads the output any more (the terminal closed, `| tee` killed): the run goes on, its lines in RUN_DIR
    surviveLostOutput();
    const stopAfterS = a['stop-after'] !== undefined ? parseDuration(a['stop-after'], 'stop-after') : null;
    if (stopAfterS !== null) setTimeout(() => c.requestStop(`--stop-after ${a['stop-after-given'] ?? a['stop-after']}`), stopAfterS * 1000).unref();
    if (a['exit-with-stdin']) {
      // launch stops this process at once by the line "quit" and then closing stdin (a failure it stops the run for);
      // stdin closing alone: the launcher was killed outright. The run then ends as for a first signal, after the step
      // in progress with its checkpoint (the workers serve until it lets them go: worker-command.ts stopWhenReleased)
      let quit = false;
      process.stdin.on('end', () => {
        if (quit) return stop('stdin closed', 1);
        if (stopCode !== 0) return;
        if (!c.isRunning || recovery?.recovering) return stop('stdin closed', 1);
        stopCode = 1;
        // its lines from now on go where launch kept them
        if (runDir !== undefined) writeOutputTo(path.join(runDir, 'coord.log'));
        c.requestStop('the launcher is gone (stdin closed)');
        progress.note(`stdin closed without a word from launch (the launcher is gone): ending the run after the step in progress${checkpoints ? `, with a checkpoint; ${continueCommand} continues it` : ' (nothing is kept: no --run-dir)'}`);
      });
      // launch passes on a signal it got as the line "stop SIGNAL": one request however many copies of the signal
      // arrive (pkill, a service manager stopping the group: this process got it too); a later signal of its own stops at once.
      // "now SIGNAL": launch's second signal, which stops everything at once (recorded as that signal, not as stdin closing)
      readline.createInterface({ input: process.stdin }).on('line', (line) => {
        if (line.trim() === 'quit') quit = true;
        // "end REASON": launch cannot go on (a log it cannot write): the run ends after the step in progress, with
        // a checkpoint, the reason recorded; exit code 2
        const end = /^end (.+)$/.exec(line.trim());
        if (end) {
          if (stopCode !== 0) return;
          if (!c.isRunning || recovery?.recovering) return stop(end[1]!, 2);
          stopCode = 2;
          c.requestStop(end[1]!);
          progress.note(`${end[1]}: ending the run after the step in progress${checkpoints ? `, with a checkpoint; ${continueCommand} continues it` : ''}`);
          return;
        }
        const m = /^(stop|now) (SIGINT|SIGTERM|SIGHUP)$/.exec(line.trim());
        if (!m) return;
        const sig = m[2] as 'SIGINT' | 'SIGTERM' | 'SIGHUP';
        // never counted as this process's own signal: the same signal may reach it too, before or after this line
        if (m[1] === 'now' || !endRun(sig)) stop(sig, signalExitCode(sig));
      });
    }
    let recovery: Recovery | null = null;
    try {
      await c.start();
      // resumed from a chosen earlier checkpoint into its own folder: the later ones (an abandoned course) are set
      // aside, not taken over by a later --resume; only now, with the whole run checked and both workers configured
      if (resumed && newCourse) setAsideLater(a.resume!, resumed.step, info);
      if (a['inspect-port'] !== undefined) {
        // the tool is let in with the credentials this coordinator uses: said with the address, so the line works as printed
        // every credential the service asks for: the TLS files and the token (launch gives both: a token of its own beside --tls)
        const tlsArgs = a.tls !== undefined ? `--tls ${a.tls}` : security?.tls ? '(with --tls-ca, --tls-cert and --tls-key as here)' : '';
        const tokenArgs = a['token-file'] !== undefined ? `--token-file ${a['token-file']}` : security?.token ? `(with this run's token: --token-file FILE or $${TOKEN_ENV})` : '';
        const credentials = [tlsArgs, tokenArgs].filter((x) => x !== '').join(' ');
        inspection = await openInspectService({ coordinator: c, spec, data, dataName, host: a['inspect-host'], port: a['inspect-port'], info: (l) => progress.note(l), credentials });
      }
      const runEvent = {
        event: 'run',
        run_id: c.runId,
        protocol_version: c.identity.protocol_version,
        preset: spec.name,
        model_hash: modelHash(spec),
        steps: targetSteps,
        start_step: startStep,
        resumed_from: resumed?.file ?? null,
        epochs: epochs ?? null,
        steps_per_epoch: useEpochs ? stepsPerEpoch : null,
        batch,
        micro_batches: microBatches,
        seed,
        hyper,
        lr_schedule: schedule ? { spec: schedule.spec, state: schedule.state } : null,
        data: data.source.description,
        eval: evalSet ? { every: evalEvery, data: evalSet.description } : null,
        checkpoints: checkpoints ? { dir: checkpointDir(runDir!), every: checkpointEvery, minutes: checkpointMinutes, keep } : null,
        workers: c.handshakes!.map((h, t) => ({ tower: t, address: workers[t], backend: h.backend, device: h.device, adapter: h.adapter?.name ?? null, host: h.hostname, pid: h.pid })),
        crossings: c.configured![0].crossings,
        started: new Date().toISOString(),
        // what the run folder belongs to beyond this process (run-dir.ts): its next pod goes on in the folder
        ...(process.env[LOCK_OWNER_ENV] ? { lock_owner: process.env[LOCK_OWNER_ENV] } : {}),
      };
      log.writeRunFile(runEvent);
      log.write(runEvent);
      runLogged = true;
      const t0 = performance.now();
      const evals: EvalMetrics[] = [];
      const onEval = (m: EvalMetrics) => {
        evals.push(m);
        log.write(m);
        progress.note(`evaluation after step ${m.step}: loss ${m.loss.toFixed(3)}, ${errorWords(m.top1_error, m.top5_error, spec.classes)} (${m.images} held-out images)`);
      };
      const onCheckpoint = (file: string, step: number) => {
        log.write({ event: 'checkpoint', step, file });
        progress.note(`checkpoint ${file}`);
      };
      const onLrDrop = (lr: number, epoch: number) => {
        log.write({ event: 'lr', step: c.stepsCompleted, epoch, lr });
        progress.note(`the top-1 error stopped improving: learning rate now ${lr} (epoch ${epoch})`);
      };
      // a lost worker: wait for it, then continue from the last checkpoint (recovery.ts)
      recovery = new Recovery(c, {
        maxRestarts: a['max-restarts'],
        waitMs: a['wait-for-workers'] * 1000,
        resumedFrom: resumed?.file,
        info: (l) => progress.note(l),
        onRestart: (e) => log.write(e),
        onLost: (e) => log.write(e),
      });
      const steps = await recovery.run(
        targetSteps,
        (m) => {
          log.write(m);
          progress.step(m);
        },
        { onEval, onCheckpoint, onLrDrop },
      );
      progress.stop();
      if (c.stoppedEarly) {
        const ckpt = checkpoints ? recovery.checkpoint : null;
        log.write({ event: 'stopped', reason: c.stoppedEarly.reason, step: c.stoppedEarly.step, checkpoint: ckpt });
        const kept = steps.count === 0 ? '; no step was done, nothing new to keep' : ckpt ? `; checkpoint ${ckpt}` : '; no checkpoint (give --run-dir to keep one)';
        const resume = ckpt ? `: \`${continueCommand}\` continues the run` : '';
        info(`stopped (${c.stoppedEarly.reason}) after step ${c.stoppedEarly.step} of ${targetSteps}${kept}${resume}`);
      }
      const done = { ...steps.summary(performance.now() - t0, evals), data_wait_share: c.dataWaitShare };
      log.write(done);
      endLogged = true;
      if (steps.count > 0) {
        info(
          `done: ${done.steps} step${done.steps === 1 ? '' : 's'} in ${done.elapsed_s.toFixed(1)} s, ${done.images_per_s.toFixed(1)} images/s (median step ${done.median_step_ms.toFixed(0)} ms), ` +
            `${done.micro_batches} micro-batch${done.micro_batches === 1 ? '' : 'es'} a step, ` +
            `loss ${done.loss_last!.toFixed(3)} and top-1 error ${(100 * done.top1_error_last!).toFixed(0)}% over the last ${Math.min(10, steps.count) === 1 ? 'step' : `${Math.min(10, steps.count)} steps`}, ` +
            `waiting on the exchange ${done.exchange_share.map((x) => `${(100 * x).toFixed(0)}%`).join(' / ')} of the workers' step time ` +
            `(${done.exchange_hidden_share.map((x) => `${(100 * x).toFixed(0)}%`).join(' / ')} more hidden behind compute), on the data ${(100 * done.data_wait_share).toFixed(0)}% of the run` +
            shortStepsNote(done.median_step_ms, done.exchange_share),
        );
      } else if (resumed && !c.stoppedEarly) info(`nothing to do: the run is at step ${startStep} of ${targetSteps}`);
    } catch (e) {
      progress.stop();
      // the failure line is written below: a signal while the data closes must not write a stopped line first
      if (runLogged) endLogged = true;
      await data.close().catch(() => {});
      if (e instanceof DivergedError) {
        const last = recovery?.checkpoint;
        // the checkpoint to go on from: the latest written while the loss was calm (a later one may hold weights
        // already thrown off), resumed by its file name
        const calm = c.lastCalmCheckpoint();
        const lower = `--lr ${Number((c.hyperOf(Math.max(0, e.step)).lr / 2).toPrecision(3))}`;
        const kept = calm
          ? `; the last checkpoint written before the loss rose is ${calm}${last && path.resolve(last) !== path.resolve(calm) ? ` (not the latest, ${path.basename(last)})` : ''}: resume with --resume ${calm} ${lower}`
          : last
            ? `; every checkpoint of this run was written after the loss rose (the latest is ${last}): start again with a lower --lr`
            : checkpoints
              ? '; no checkpoint was written yet'
              : '';
        logFailure(log, { event: 'failed', step: e.step, error: e.message, checkpoint: last ?? null, resume_from: calm });
        process.stderr.write(`alexnet coordinator: ${e.message}${kept}\n`);
        c.close();
        process.exit(1);
      }
      if (e instanceof WorkerFailure) {
        const last = runDir !== undefined ? latestCheckpoint(checkpointDir(runDir)) : null;
        // a worker lost before training began (while it was configured): no session of this process to end
        if (runLogged) logFailure(log, { event: 'failed', tower: e.tower, error: e.message, checkpoint: last });
        // started by hand (launch says its own): what goes on from here
        // a worker another coordinator took over (--take-over) is alive and busy with that run: not to be started again
        const takenOver = / was replaced by run /.test(e.message);
        const resume = a['continue-with'] !== undefined
          ? `${a['continue-with']} continues from it, in a new job step (sbatch the job script again)`
          : takenOver
            ? `alexnet coordinator --resume ${runDir} continues from it on workers that are free (these now serve the run that took them over)`
            : `start the worker again, then alexnet coordinator --resume ${runDir} with the same --workers continues from it`;
        const next = a['exit-with-stdin'] ? '' : last ? `; the last checkpoint is ${last}: ${resume}` : runDir !== undefined ? '; no checkpoint was written yet' : '';
        process.stderr.write(`alexnet coordinator: ${e.message}${next}\n`);
        c.close();
        process.exit(1);
      }
      // any other failure of a session that began (a checkpoint that cannot be written, ...): in its record too
      if (runLogged) logFailure(log, { event: 'failed', error: e instanceof Error ? e.message : String(e), checkpoint: runDir !== undefined ? latestCheckpoint(checkpointDir(runDir)) : null });
      c.close();
      throw e;
    }
    await dashboard?.close();
    await inspection?.close();
    await data.close();
    // the workers are free for another run at once (their lease would otherwise hold them a while)
    await c.release();
    c.close();
    if (a['exit-with-stdin']) process.stdin.destroy();
    // a run ended by a signal says so in its exit code (a time limit is a normal end)
    if (stopCode !== 0) process.exitCode = stopCode;
  },
};

/** The failure as a metrics line, unless the run directory cannot take it (a full disk): the error is said on stderr anyway. */
function logFailure(log: MetricsLog, event: object): void {
  try {
    log.write(event);
  } catch {
    // nothing more to do
  }
}

/** "2.5 epochs of 64 steps": a step count in epochs, for the schedule's warnings. */
function epochsOf(steps: number, stepsPerEpoch: number): string {
  const n = (steps / stepsPerEpoch).toFixed(2).replace(/\.?0+$/, '');
  return `${n} epoch${n === '1' ? '' : 's'} of ${stepsPerEpoch} steps`;
}
