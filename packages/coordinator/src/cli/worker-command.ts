/** `alexnet worker`: one tower on one device, serving alexnet.v1 Worker and Peer over gRPC. */
import type { CommandModule } from 'yargs';
import fs from 'node:fs';
import readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { checkEnvSettings, fsReason, getPreset, presetNames, type RequestedBackend, type TowerIndex } from '@alexnet-mp/core';
import { DEFAULT_LEASE_MS, DEFAULT_MAX_BATCH, DEVICE_LOST_EXIT_CODE, PROTOCOL_VERSION, describeDevice, describeThreads, describeSecurity, isLoopback, startWorker, type TowerWorker } from '@alexnet-mp/worker';
import { formatCpuList, parseCpuList, pinThisProcess } from '../cpu-affinity.js';
import { UserError } from './errors.js';
import { checkMessageFits } from './batch-fit.js';
import { DEFAULT_PRESET, backendOption, checkAddress, checkThreads, fallbackOption, positiveInt } from './options.js';
import { securityFrom, securityOptions, type SecurityArgs } from './security-options.js';
import { LAUNCH_LOG_ENV, surviveLostOutput, writeOutputTo } from './output-gone.js';
import { MALLOC_TUNABLES, mallocTuned } from '../malloc-tuning.js';
import { COMMAND_LIST } from './command-list.js';
import { checkOutputKind } from '../output-kinds.js';

export interface WorkerArgs extends SecurityArgs {
  port: number;
  host: string;
  backend: string;
  device?: number;
  threads?: number;
  cpus?: string;
  tower: number;
  peer?: string;
  preset: string;
  'max-batch': number;
  'on-fallback': 'throw' | 'warn';
  'exchange-timeout': number;
  'exchange-stream': boolean;
  'connect-timeout': number;
  lease: number;
  insecure: boolean;
  'protocol-version': number;
  'exit-with-stdin': boolean;
  drain: boolean;
  'drain-timeout': number;
  'trace-crossings'?: string;
}

export const workerCommand: CommandModule<object, WorkerArgs> = {
  ...COMMAND_LIST['worker'],
  builder: (y) =>
    y
      .usage(
        '$0 worker --tower 0|1 [options]\n\nOwns one gpu.js device and one tower of the model (its parameters and momentum); ' +
          'trains when a coordinator calls it, exchanging the crossing tensors directly with its peer worker. ' +
          'Prints "listening on HOST:PORT" once ready. Exits with code 75 if its GPU device is lost (its parameters lived there): ' +
          'start it again, and the coordinator resumes from the latest checkpoint (alexnet launch does this itself).',
      )
      .options({
        tower: { type: 'number', choices: [0, 1], demandOption: true, describe: 'which tower (column) this worker computes; tower 0 also runs fc8 and the loss' },
        port: { type: 'number', default: 50051, describe: 'port to listen on (0: let the OS choose)' },
        host: { type: 'string', default: '127.0.0.1', describe: 'address to listen on (0.0.0.0 to accept other machines)' },
        peer: { type: 'string', describe: "the other worker's HOST:PORT (default: the address the coordinator knows it by)" },
        preset: { choices: presetNames, default: DEFAULT_PRESET, describe: 'model preset (must match the coordinator and the peer)' },
        backend: backendOption,
        device: {
          type: 'number',
          describe:
            "the WebGPU adapter to run on, by its index in Dawn's list (GPUs first; default: the first GPU). An index with no adapter is refused, listing the adapters; " +
            'so is one that cannot be opened apart from an identical GPU (that takes Mesa\'s device-select Vulkan layer). webasm and cpu ignore it (they run on the CPU cores)',
        },
        threads: {
          type: 'number',
          describe:
            'webasm: the threads each kernel runs on; 1 runs them on the worker\'s own thread, N on N worker threads (default: one per core). ' +
            'Two workers sharing a machine\'s cores each take half of them (launch gives them that; on 2 cores, 1 each is fastest: docs/performance.md). webgpu and cpu ignore it',
        },
        cpus: {
          type: 'string',
          describe:
            'Linux: run this worker on these CPU cores only, e.g. 0-3 or 0,2 (every thread of the process; --threads then defaults to their number). ' +
            'launch gives two CPU workers half the cores each; with two workers started by hand on one host, give each its own half',
        },
        'max-batch': { type: 'number', default: DEFAULT_MAX_BATCH, describe: 'largest batch accepted; sets the gRPC message size limits' },
        'on-fallback': fallbackOption,
        'exchange-timeout': { type: 'number', default: 600, describe: 'seconds to wait for a tensor from the peer before failing the step' },
        'exchange-stream': {
          type: 'boolean',
          default: true,
          describe: 'send the step tensors to the peer on one stream (Peer.Stream) when it has one; --no-exchange-stream: one Exchange call a tensor, as workers without the stream do',
        },
        'connect-timeout': { type: 'number', default: 30, describe: 'seconds Configure waits for the peer worker to answer (it may still be starting)' },
        lease: { type: 'number', default: DEFAULT_LEASE_MS / 1000, describe: "seconds a run keeps this worker after its last call: another coordinator's run is refused meanwhile (unless it gives --take-over)" },
        drain: {
          type: 'boolean',
          default: false,
          describe:
            "on the first SIGTERM (or SIGINT, SIGHUP) while a run holds this worker, ask its coordinator for a checkpoint (the step replies say the worker is draining) and serve on until that checkpoint with this tower's parameters is written or the run lets the worker go (at most --drain-timeout), so that an eviction loses no step; a second signal stops it at once",
        },
        'drain-timeout': { type: 'number', default: 120, describe: 'seconds a draining worker (--drain) waits for its checkpoint before it stops anyway' },
        'trace-crossings': {
          type: 'string',
          describe:
            'write each step\'s crossing timeline to FILE, one JSON line a step (when each tensor was sent and the peer\'s arrived, the waits, the garbage collector\'s pauses): ' +
            'a diagnostic of where the exchange wait goes; `node --import tsx bench/crossing-waits.ts` runs two traced workers and splits their waits',
        },
        insecure: { type: 'boolean', default: false, describe: 'listen beyond loopback (--host) without --tls or a token: anyone who reaches the port can drive this worker and join its run' },
        'protocol-version': { type: 'number', default: PROTOCOL_VERSION, hidden: true, describe: 'speak as if this protocol version (for testing the refusal)' },
        'exit-with-stdin': { type: 'boolean', default: false, hidden: true, describe: 'exit when stdin says "quit" and closes; stdin closing alone (the launcher gone): serve until the run lets this worker go, then exit (launch uses it so no worker outlives it for long; a first SIGINT, SIGTERM or SIGHUP then waits for it)' },
        ...securityOptions,
      }) as never,
  handler: (a) => serveWorker(a),
};

/** What a caller running the worker in its own process (`alexnet slurm`) may add. */
export interface WorkerHooks {
  /** Called once the worker listens, with the address it listens on and the function that stops it. */
  readonly onListening?: (address: string, stop: (why: string) => void) => void;
  /** Takes over SIGINT/SIGTERM: called with the signal and the function that stops the worker (default: stop at once). */
  readonly onSignal?: (signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP', stop: (why: string) => void) => void;
  /** What starts this worker again after it exits on a lost GPU (default: what launch does), for its last line. */
  readonly restartedBy?: string;
}

/**
 * A worker's signal handling when the signal is most likely one to every process of the run (Slurm signals every
 * task of a step; pkill or a service manager the whole group under launch): the coordinator's checkpoint needs
 * this worker's parameters, so the first signal only says so and the worker serves on; a second stops it at once.
 */
export function serveOnFirstSignal(say: (line: string) => void): NonNullable<WorkerHooks['onSignal']> {
  let signals = 0;
  return (sig, stop) => {
    if (++signals > 1) return stop(`${sig} again`);
    say(`${sig}: serving until the coordinator ends the run after the step in progress (${sig} again: stop at once)`);
  };
}

/**
 * A worker that drains (--drain): the first signal stops it at once only when no run holds it; otherwise its step
 * replies say it is draining, so that the coordinator writes a checkpoint after the step, and it serves on until the
 * run lets it go (its coordinator released it, went, or its lease lapsed), a checkpoint with its parameters and
 * momentum is written (the coordinator's next call after the read says so; it resumes from that checkpoint once the
 * worker is back), or `timeoutMs` has passed.
 * A second signal stops it at once.
 */
export function drainOnFirstSignal(worker: Pick<TowerWorker, 'heldBy' | 'drained' | 'draining' | 'onDrained'>, say: (line: string) => void, timeoutMs: number, pollMs = 250): NonNullable<WorkerHooks['onSignal']> {
  let signals = 0;
  let poll: NodeJS.Timeout | undefined;
  return (sig, stop) => {
    if (++signals > 1) {
      clearInterval(poll);
      return stop(`${sig} again`);
    }
    const held = worker.heldBy();
    if (held === null) return stop(sig);
    const until = performance.now() + timeoutMs;
    worker.draining = true;
    say(`${sig}: draining: serving until a checkpoint with this tower's parameters is written or the run lets this worker go, for ${(timeoutMs / 1000).toFixed(0)} s at most (${held}; ${sig} again: stop at once)`);
    const drained = (why: string) => {
      clearInterval(poll);
      stop(`${sig}, drained: ${why}`);
    };
    // at once, not at the next poll: the coordinator told so calls again within milliseconds
    worker.onDrained = () => drained("a checkpoint with this tower's parameters is written");
    poll = setInterval(() => {
      const why = worker.heldBy() === null ? 'the run let this worker go' : performance.now() >= until ? `no checkpoint within --drain-timeout ${(timeoutMs / 1000).toFixed(0)} s: the steps since the last one are lost` : null;
      if (why !== null) drained(why);
    }, pollMs);
  };
}

/** How long a worker whose launcher is gone serves its run at most (a step and a checkpoint at the paper preset on CPUs). */
export const LAUNCHER_GONE_MS = 10 * 60_000;

/**
 * Under launch, stdin closed without launch's "quit" line first: the launcher was killed outright (SIGKILL, the
 * out-of-memory killer). The coordinator sees the same and ends the run after the step in progress with a checkpoint
 * that needs this worker's parameters, so the worker serves until the run lets it go (released, its coordinator gone,
 * or its lease lapsed), `timeoutMs` at most; a worker no run holds stops at once.
 */
export function stopWhenReleased(worker: Pick<TowerWorker, 'heldBy'>, say: (line: string) => void, stop: (why: string) => void, timeoutMs = LAUNCHER_GONE_MS, pollMs = 250): void {
  const held = worker.heldBy();
  if (held === null) return stop('stdin closed');
  const s = `${(timeoutMs / 1000).toFixed(0)} s`;
  say(`stdin closed without a word from launch (the launcher is gone): serving until the run lets this worker go (its coordinator ends the run after the step in progress, with a checkpoint), ${s} at most (${held})`);
  const until = performance.now() + timeoutMs;
  const poll = setInterval(() => {
    const why = worker.heldBy() === null ? 'the run let this worker go' : performance.now() >= until ? `the run still held it after ${s}` : null;
    if (why === null) return;
    clearInterval(poll);
    stop(`stdin closed, ${why}`);
  }, pollMs);
}

/** The worker command's work: checks the options, starts the worker, stops it on SIGINT/SIGTERM/SIGHUP (or as `hooks.onSignal` says). */
export async function serveWorker(a: WorkerArgs, hooks: WorkerHooks = {}): Promise<void> {
  const spec = getPreset(a.preset);
  positiveInt(a.port, 'port', 0);
  if (a.port > 65535) throw new UserError(`--port must be 0..65535, got ${a.port}`);
  if (a.device !== undefined) positiveInt(a.device, 'device', 0);
  checkThreads(a.threads);
  positiveInt(a['max-batch'], 'max-batch');
  checkMessageFits(spec, a['max-batch'], '--max-batch');
  if (!(a['exchange-timeout'] > 0)) throw new UserError(`--exchange-timeout must be > 0 seconds`);
  if (!(a['connect-timeout'] > 0)) throw new UserError(`--connect-timeout must be > 0 seconds`);
  if (!(a.lease > 0)) throw new UserError(`--lease must be > 0 seconds`);
  if (!(a['drain-timeout'] > 0)) throw new UserError(`--drain-timeout must be > 0 seconds`);
  const peer = a.peer === undefined ? undefined : checkAddress(a.peer, 'peer');
  const tower = a.tower as TowerIndex;
  const security = securityFrom(a, `worker${tower}`);
  if (!security && !isLoopback(a.host) && !a.insecure) {
    throw new UserError(
      `--host ${a.host} without authentication: anyone who reaches the port could drive this worker. Give --token-file FILE (the same token to the peer and the coordinator) or --tls DIR (\`alexnet certs\`), or --insecure to accept that`,
    );
  }
  // an ALEXNET_* setting its kernels would refuse at the first step: refused now
  checkEnvSettings();
  // pinned before the device starts its kernel threads, which inherit the affinity (cpu-affinity.ts)
  const cpus = a.cpus === undefined ? null : parseCpuList(String(a.cpus));
  if (cpus) pinThisProcess(cpus);
  // whether the trace can be written, said now in one line (opened to append: the worker's CrossingTrace empties it
  // once the worker starts, so a start refused leaves an earlier trace as it was)
  const traceCrossings = a['trace-crossings'];
  if (traceCrossings !== undefined) {
    if (String(traceCrossings).trim() === '') throw new UserError('--trace-crossings needs a file name');
    // emptied at the first step: a file of another kind given by mistake (a checkpoint, a run's metrics) is refused now
    checkOutputKind(traceCrossings, '--trace-crossings', 'crossingTrace');
    try {
      fs.closeSync(fs.openSync(traceCrossings, 'a'));
    } catch (e) {
      throw new UserError(`--trace-crossings: cannot write ${traceCrossings}: ${fsReason(e)}`);
    }
  }
  const log = (line: string) => process.stdout.write(`alexnet worker ${tower}: ${line}\n`);
  let running;
  // grpc-js logs a failed bind on its own; the error below says it better
  grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  try {
    running = await startWorker({
      spec,
      tower,
      backend: a.backend as RequestedBackend,
      device: a.device,
      threads: a.threads,
      host: a.host,
      port: a.port,
      peer,
      maxBatch: a['max-batch'],
      protocolVersion: a['protocol-version'],
      fallback: { onFallback: a['on-fallback'] },
      exchangeTimeoutMs: a['exchange-timeout'] * 1000,
      exchangeStream: a['exchange-stream'],
      connectTimeoutMs: a['connect-timeout'] * 1000,
      leaseMs: a.lease * 1000,
      log,
      security,
      // its parameters and momentum on the GPU are gone: exit (the connections close at once), so that the
      // coordinator restarts the run from its last checkpoint once this worker is started again
      traceCrossings,
      onDeviceLost: () => {
        log(`exiting with code ${DEVICE_LOST_EXIT_CODE} so that it can be started again (${hooks.restartedBy ?? 'alexnet launch restarts it, up to --max-restarts; the coordinator resumes from the latest checkpoint'})`);
        process.exit(DEVICE_LOST_EXIT_CODE);
      },
    });
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    const where = `cannot listen on ${a.host}:${a.port}`;
    if (/EADDRINUSE/.test(msg)) throw new UserError(`${where}: the port is in use (choose another --port, or 0 to let the OS pick one)`);
    if (/EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN/.test(msg)) throw new UserError(`${where}: no such address on this machine (--host)`);
    if (/EACCES/.test(msg)) throw new UserError(`${where}: permission denied (ports below 1024 need privileges)`);
    if (/No address added/.test(msg)) throw new UserError(`${where}: ${msg}`);
    throw e;
  } finally {
    grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
  }
  const r = running;
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    void r.close().then(() => process.exit(0));
  };
  // under launch (--exit-with-stdin) a signal to this worker is most likely one to the whole run (pkill, a service
  // manager stopping the group): it serves on until launch closes its stdin. Started by hand, a signal stops it.
  // with --drain, a signal while a run holds it waits until nothing is lost
  const onSignal = hooks.onSignal ?? (a['exit-with-stdin'] ? serveOnFirstSignal(log) : a.drain ? drainOnFirstSignal(r.worker, log, a['drain-timeout'] * 1000) : (sig: string, stopNow: (why: string) => void) => stopNow(sig));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig, stop));
  // nobody reads the output any more (the terminal closed): the worker goes on
  surviveLostOutput();
  if (a['exit-with-stdin']) {
    // launch stops this worker by the line "quit" and then closing stdin; stdin closing alone: the launcher is gone
    let quit = false;
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
      if (line.trim() === 'quit') quit = true;
    });
    let closed = false;
    const stdinClosed = () => {
      if (closed) return;
      closed = true;
      if (quit) return stop('stdin closed');
      // its lines from now on go where launch kept them (RUN_DIR/workerN.log, when the run has a folder)
      const launchLog = process.env[LAUNCH_LOG_ENV];
      if (launchLog) writeOutputTo(launchLog);
      stopWhenReleased(r.worker, log, stop);
    };
    process.stdin.on('end', stdinClosed);
    process.stdin.on('error', stdinClosed);
  }
  const d = r.worker.device;
  const threads = describeThreads(d.mode, d.threads, a.threads);
  log(`preset ${spec.name}, ${describeDevice(d.mode, d.adapter, a.device, d.note)}, pid ${process.pid}${cpus ? `, CPU${cpus.length === 1 ? '' : 's'} ${formatCpuList(cpus)}` : ''}${threads ? `, ${threads}` : ''}${peer ? `, peer ${peer}` : ''}, max batch ${r.worker.maxBatch} (messages up to ${(r.worker.limitBytes / 2 ** 20).toFixed(2)} MiB)`);
  log(`authentication: ${describeSecurity(security)}`);
  // started by hand rather than by launch: say what launch sets and why (malloc-tuning.ts)
  if (process.platform === 'linux' && r.worker.device.mode === 'webasm' && !mallocTuned()) {
    log(`note: glibc's default malloc faults in fresh pages for every large kernel result; start the worker with GLIBC_TUNABLES=${MALLOC_TUNABLES.join(':')} (what alexnet launch sets) for faster steps, or ALEXNET_MALLOC_TUNING=0 to silence this`);
  }
  if (!security && !isLoopback(a.host)) log(`warning: listening on ${a.host} without authentication (--insecure): anyone who reaches this port can drive this worker (give --tls DIR or --token-file)`);
  log(`listening on ${r.address}`);
  hooks.onListening?.(r.address, stop);
}
