/**
 * The worker process: one device, one tower, a gRPC server with two services
 * on one port: Worker (the coordinator's calls) and Peer (the other worker's).
 *
 * A step does the arithmetic of core's GroupedTrainer.trainStep, in the same
 * order, with the crossing tensors travelling between processes:
 * - forward: each tower runs a segment, sends its output to the peer, waits
 *   for the peer's, and feeds [tower 0's; tower 1's] to the next segment.
 *   At fc7 -> fc8 only tower 1 sends: fc8 and the loss run on tower 0;
 * - backward: tower 0 sends tower 1 its slice of d(fc7); then at each
 *   crossing each tower sends the peer the peer's slice of its input
 *   gradient and adds (tower 0's slice) + (tower 1's slice) of its own;
 * - the SGD update is local.
 * Both towers compute at the same time between exchanges.
 *
 * An evaluation (Evaluate) is the forward pass alone, without dropout, on a
 * Tower for the evaluation's batch size that shares the training tower's
 * parameters; its crossing tensors travel with Peer.EvalExchange and are
 * keyed by the evaluation's number, apart from the steps' tensors.
 * One step or evaluation runs at a time, a failure leaving the worker FAILED until the next Configure
 * (activity.ts).
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import {
  Device,
  Tower,
  initTowerParams,
  segmentModel,
  segmentOfLayer,
  type DeviceLoss,
  type ModelSpec,
  type Segment,
  type TowerIndex,
} from '@alexnet-mp/core';
import {
  FEATURES,
  PROTOCOL_VERSION,
  crossingShape,
  identityDifferences,
  maxMessageBytes,
  modelIdentity,
  type ConfigureReply,
  type ConfigureRequest,
  type EvaluateReply,
  type EvaluateRequest,
  type GetActivationsReply,
  type GetActivationsRequest,
  type GetParametersRequest,
  type HandshakeReply,
  type HandshakeRequest,
  type ModelIdentity,
  type ParameterTensor,
  type ReleaseReply,
  type ReleaseRequest,
  type SetParametersReply,
  type StatusReply,
  type StepReply,
  type StepRequest,
  type WorkerState,
} from './protocol.js';
import { PeerLink, newRun, notTheConfiguredRun, redactRunId, touch, type Run } from './run.js';
import { checkConfigure } from './configure-checks.js';
import { helloPeer, type PeerSide } from './peer-service.js';
import { leaseRefusal } from './lease.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_EXCHANGE_TIMEOUT_MS, DEFAULT_LEASE_MS, DEFAULT_MAX_BATCH, type WorkerOptions } from './worker-options.js';
import { runStep } from './step.js';
import { checkStepMicroBatches } from './pipeline.js';
import { runActivations, runEvaluation } from './evaluation.js';
import { checkParametersRun, parameterSetter, streamParameters } from './parameters.js';
import { statusReply } from './status.js';
import { DEFAULT_CHUNK_BYTES, activationChunks } from './chunks.js';
import { RpcError, clientStreamHandler, streamHandler, unaryHandler } from './rpc.js';
import { Activity } from './activity.js';
import { evalPhase, stepPhase } from './exchange.js';
import type { OpenConnections } from './connection-limits.js';
import { checkHyper, checkLabels, checkRunId, checkStepImages } from './validate.js';
import { adapterMsg } from './adapter-report.js';
import { authenticationOf } from './auth.js';
import { CrossingTrace } from './crossing-trace.js';

/** Run ids remembered from handshakes (the oldest forgotten first). */
const MAX_HANDSHAKEN = 64;

export class TowerWorker implements PeerSide {
  private run: Run | null = null;
  /** What the worker is doing, and the rules of its calls (activity.ts). */
  private readonly activity: Activity;
  private handshaken = new Set<string>();
  /** Runs whose handshake asked to take the worker from the run holding its lease. */
  private takingOver = new Set<string>();
  private readonly started = performance.now();
  /** Why the GPU device is gone, once it is lost (webgpu): the worker then refuses to train (deviceLost). */
  private lostDevice: string | null = null;
  readonly identity: ModelIdentity;
  readonly maxBatch: number;
  readonly limitBytes: number;
  readonly segments: Segment[];
  readonly points: string[];
  readonly exchangeTimeoutMs: number;
  readonly leaseMs: number;
  readonly connectTimeoutMs: number;
  readonly log: (line: string) => void;
  readonly trace: CrossingTrace | null;

  constructor(
    readonly o: WorkerOptions,
    readonly device: Device,
    private readonly connections: OpenConnections | null = null,
  ) {
    this.identity = modelIdentity(o.spec, o.protocolVersion ?? PROTOCOL_VERSION);
    this.maxBatch = o.maxBatch ?? DEFAULT_MAX_BATCH;
    this.limitBytes = maxMessageBytes(o.spec, this.maxBatch);
    this.exchangeTimeoutMs = o.exchangeTimeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS;
    this.leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    this.connectTimeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.log = o.log ?? (() => {});
    this.trace = o.traceCrossings === undefined ? null : new CrossingTrace(o.traceCrossings, o.tower, this.log);
    this.activity = new Activity(o.tower, this.log);
    this.segments = segmentModel(o.spec);
    this.points = this.segments.filter((s) => s.crossing !== null).map((s) => s.crossing!);
    // the step below assumes the cuda-convnet2 layout of every preset: the last segment (fc8) runs on tower 0 only
    if (this.segments.findIndex((s) => s.tower0Only) !== this.segments.length - 1) throw new Error(`preset ${o.spec.name}: the classifier must be the last segment, on tower 0 only`);
    if (device.mode === 'webgpu') {
      device.whenLost().then(
        (loss) => this.deviceLost(loss),
        (e: unknown) => this.log(`cannot watch the GPU device for its loss: ${(e as Error).message}`),
      );
    }
  }

  /**
   * The GPU device is lost (a driver reset, a GPU fallen off the bus): the tower's parameters, momentum and
   * results on it are gone and its kernels fail. `onDeviceLost` is told first (the worker command exits
   * there, so that the coordinator sees the worker gone and restarts it from its last checkpoint); without
   * it the worker is FAILED and refuses Configure, saying why.
   */
  private deviceLost(loss: DeviceLoss): void {
    const why = `the GPU device was lost (${loss.reason}${loss.message ? `: ${loss.message}` : ''})`;
    this.lostDevice = why;
    this.log(why);
    try {
      // the worker command exits here, before any reply of the step in flight goes out
      this.o.onDeviceLost?.(loss);
    } finally {
      this.dropRun(new Error(why));
      this.activity.fail(why);
    }
  }

  /** The worker's own --peer, if given (it wins over the coordinator's address). */
  get peerOption(): string | undefined {
    return this.o.peer;
  }

  /** Whether this worker takes a peer's tensors on Peer.Stream (else by Exchange only, as older builds). */
  get takesStream(): boolean {
    return this.o.exchangeStream !== false;
  }

  /** Whether `runId` is the configured run. */
  knowsRun(runId: string): boolean {
    return this.run !== null && this.run.id === runId;
  }

  /** A random id of this process, in its Handshake and Peer.Hello replies: tells the coordinator whom a worker's --peer reaches. */
  readonly instance = crypto.randomBytes(8).toString('hex');

  /** What this worker serves of the additions within alexnet.v1 (HandshakeReply.features, PeerHello.features). */
  get features(): string[] {
    return FEATURES.filter((f) => f !== 'exchange-stream' || this.o.exchangeStream !== false);
  }

  /** The adapter index on webgpu; elsewhere the --device given (ignored there), 0 when none was. */
  get deviceIndex(): number {
    return this.device.adapter?.index ?? this.o.device ?? 0;
  }

  get tower(): TowerIndex {
    return this.o.tower;
  }

  get spec(): ModelSpec {
    return this.o.spec;
  }

  get other(): TowerIndex {
    return (1 - this.o.tower) as TowerIndex;
  }

  /** The crossing point at which only tower 1 sends forward and only tower 0 sends back (fc7, into the classifier). */
  get classifierPoint(): string | null {
    const last = this.segments[this.segments.length - 1]!;
    return last.tower0Only ? last.crossing : null;
  }

  // ---------------------------------------------------------------- Worker service

  handshake = unaryHandler<HandshakeRequest, HandshakeReply>(async (req, call) => {
    checkRunId(req.run_id, 'Handshake');
    const diffs = identityDifferences(req.model, this.identity, 'coordinator', 'worker');
    if (req.tower !== this.tower) {
      diffs.push(`tower differs (the coordinator expects tower ${req.tower} at this address, this worker is tower ${this.tower}: list the tower 0 worker first in --workers, or start this one with --tower ${req.tower} if the other is tower ${this.tower} too)`);
    }
    if (diffs.length > 0) {
      // the preset and hash are the caller's words: control characters escaped, so that they cannot forge a log line
      this.log(`refused handshake for run ${redactRunId(req.run_id)}: ${diffs.join('; ').replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1))}`);
      throw new RpcError(grpc.status.FAILED_PRECONDITION, diffs.join('; '));
    }
    const holder = this.leaseHolder(req.run_id);
    if (holder !== null) {
      if (req.take_over !== true) {
        this.log(`refused handshake for run ${redactRunId(req.run_id)}: ${holder}`);
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `${holder}; give the coordinator --take-over to take this worker anyway (that run then fails)`);
      }
      this.takingOver.add(req.run_id);
      this.log(`run ${redactRunId(req.run_id)} takes this worker over (--take-over): ${holder}`);
    }
    if (this.run?.id === req.run_id) touch(this.run, call.getPeer());
    this.handshaken.add(req.run_id);
    // a bounded memory: a caller may shake hands without end (Configure follows its handshake at once)
    if (this.handshaken.size > MAX_HANDSHAKEN) this.handshaken.delete(this.handshaken.values().next().value!);
    if (this.takingOver.size > MAX_HANDSHAKEN) this.takingOver.delete(this.takingOver.values().next().value!);
    return {
      model: this.identity,
      tower: this.tower,
      backend: this.device.mode,
      device: this.deviceIndex,
      peer_address: this.o.peer ?? '',
      max_batch: this.maxBatch,
      hostname: os.hostname(),
      pid: process.pid,
      features: this.features,
      adapter: adapterMsg(this.device.adapter),
      authentication: authenticationOf(this.o.security),
      instance: this.instance,
    };
  });

  configure = unaryHandler<ConfigureRequest, ConfigureReply>(async (req, call) => {
    if (!this.handshaken.has(req.run_id)) throw new RpcError(grpc.status.FAILED_PRECONDITION, `run ${req.run_id} has not shaken hands with this worker`);
    const holder = this.takingOver.has(req.run_id) ? null : this.leaseHolder(req.run_id);
    if (holder !== null) throw new RpcError(grpc.status.FAILED_PRECONDITION, `${holder}; give the coordinator --take-over to take this worker anyway`);
    if (this.activity.busy && this.run?.id === req.run_id) throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: ${this.activity.state === 'STEPPING' ? 'a step' : 'an evaluation'} of this run is running`);
    if (this.lostDevice) throw new RpcError(grpc.status.FAILED_PRECONDITION, `tower ${this.tower}: ${this.lostDevice}: this worker cannot train any more; start it again`);
    const { mean, peerAddress } = checkConfigure(this, req);
    // errors of a run given up (a step abandoned before its check) go with it: this run starts from new parameters
    const stale = this.device.takeGpuErrors();
    if (stale.length > 0) this.log(`the GPU reported ${stale.length === 1 ? 'an error' : `${stale.length} errors`} in work given up before this run: ${stale[0]}`);
    this.takingOver.delete(req.run_id);
    this.dropRun(new Error(`run ${redactRunId(this.run?.id ?? '')} was replaced by run ${redactRunId(req.run_id)}`));
    // the replaced run's kernels and tensors are freed, not kept for the life of the process
    this.device.reset();
    const peer = new PeerLink(peerAddress, this.limitBytes, this.o.security);
    try {
      await helloPeer(this, peer, req.run_id);
    } catch (e) {
      peer.close();
      throw e;
    }
    const params = initTowerParams(this.o.spec, this.tower, req.seed);
    const tower = new Tower(this.device, this.o.spec, this.tower, req.batch, params);
    this.run = newRun(this.points, { id: req.run_id, batch: req.batch, seed: req.seed, tower, peer, input: { mean, scale: this.o.spec.inputScale }, holder: call.getPeer() });
    this.activity.ready();
    let parameters = 0;
    for (const p of params.values()) parameters += p.w.length + p.b.length;
    this.log(`configured for run ${redactRunId(req.run_id)}: batch ${req.batch}, seed ${req.seed}, ${parameters} parameters, input (u8 - [${mean.map((m) => m.toFixed(1)).join(', ')}]) / ${this.o.spec.inputScale}, peer ${peerAddress}`);
    return {
      tower: this.tower,
      parameters,
      peer_address: peerAddress,
      crossings: this.points.map((point) => ({ point, floats: crossingShape(this.o.spec, point, req.batch).reduce((a, b) => a * b, 1) })),
      peer_instance: peer.instance,
    };
  });


  step = unaryHandler<StepRequest, StepReply>(async (req, call) => {
    const run = this.run;
    if (!run || this.activity.state === 'IDLE') throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: call Configure first');
    if (req.run_id !== run.id) throw notTheConfiguredRun(req.run_id, run);
    touch(run, call.getPeer());
    checkStepImages(this.o.spec, run.batch, req.images);
    checkLabels(this.o.spec, req.labels, run.batch, 'Step');
    checkHyper(req.hyper);
    checkStepMicroBatches(run, req.micro_batches ?? 0);
    // the next step, sent while this one runs (feature "queued-steps"): it starts the moment this one ends
    if (this.activity.state === 'STEPPING' && req.step === run.stepsDone + 1) await this.activity.afterCurrentStep(run, req.step, call, () => this.run);
    this.activity.checkIdle(run);
    if (req.step !== run.stepsDone) throw new RpcError(grpc.status.FAILED_PRECONDITION, `step ${req.step} out of order: this worker is at step ${run.stepsDone}`);
    this.checkDrained(run, req.step);
    const reply = await this.activity.guarded(run, stepPhase(req.step), 'STEPPING', call, (signal) => runStep(this, run, req, signal));
    // asked to stop (worker --drain): the coordinator checkpoints after this step, and this worker goes after that
    return this.draining ? { ...reply, draining: true } : reply;
  });

  evaluate = unaryHandler<EvaluateRequest, EvaluateReply>(async (req, call) => {
    const { run, n } = this.checkEvaluation(req, call.getPeer());
    this.checkDrained(run, req.step);
    checkLabels(this.o.spec, req.labels, n, 'Evaluate', true);
    return this.activity.guarded(run, evalPhase(req.evaluation), 'EVALUATING', call, (signal) => runEvaluation(this, run, req, n, signal));
  });

  /** An Evaluate or GetActivations request's run, checked (configured, idle, in order), and its number of images. */
  private checkEvaluation(req: { run_id: string; step: number; evaluation: number; images: Uint8Array }, from: string): { run: Run; n: number } {
    const run = this.run;
    if (!run || this.activity.state === 'IDLE') throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: call Configure first');
    if (req.run_id !== run.id) throw notTheConfiguredRun(req.run_id, run);
    touch(run, from);
    this.activity.checkIdle(run);
    if (req.step !== run.stepsDone) throw new RpcError(grpc.status.FAILED_PRECONDITION, `evaluation after step ${req.step} asked of a worker that has done ${run.stepsDone} steps`);
    if (req.evaluation !== run.evaluationsDone) throw new RpcError(grpc.status.FAILED_PRECONDITION, `evaluation ${req.evaluation} out of order: this worker is at evaluation ${run.evaluationsDone}`);
    const { inputChannels: C, inputSize: S } = this.o.spec;
    const perImage = C * S * S;
    const n = req.images.length / perImage;
    if (!Number.isInteger(n) || n < 1 || n > this.maxBatch) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `${req.images.length} image bytes: expected uint8 [${C}][N][${S}][${S}] with N in 1..${this.maxBatch} (${perImage} bytes an image)`);
    }
    return { run, n };
  }

  /**
   * Inspection: this tower's output of one layer for the request's images, from the evaluation forward pass
   * stopped after the segment that computes the layer (numbered with the Evaluate calls).
   */
  getActivations = unaryHandler<GetActivationsRequest, GetActivationsReply>((req, call) => this.activations(req, call));

  /** GetActivations with the reply in chunks of rows of at most `max_chunk_bytes` (1 MiB) of data. */
  streamActivations = streamHandler<GetActivationsRequest, GetActivationsReply>(async (req, write, call) => {
    const reply = await this.activations(req, call);
    for (const m of activationChunks(reply, req.max_chunk_bytes || DEFAULT_CHUNK_BYTES)) await write(m);
  });

  private async activations(req: GetActivationsRequest, call: EventEmitter & { getPeer(): string }): Promise<GetActivationsReply> {
    const segment = segmentOfLayer(this.segments, req.layer);
    if (segment < 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no layer "${req.layer}" in preset ${this.o.spec.name} (layers: ${this.o.spec.layers.map((l) => l.name).join(', ')})`);
    const { run, n } = this.checkEvaluation(req, call.getPeer());
    return this.activity.guarded(run, evalPhase(req.evaluation), 'EVALUATING', call, (signal) => runActivations(this, run, req, n, segment, signal));
  }

  status = unaryHandler<unknown, StatusReply>(async () =>
    statusReply({ identity: this.identity, tower: this.tower, device: this.device, deviceIndex: this.deviceIndex, state: this.activity.state, run: this.run, lastError: this.activity.lastError, peer: this.o.peer, points: this.points, started: this.started }),
  );

  getParameters = streamHandler<GetParametersRequest, ParameterTensor>(async (req, write, call) => {
    const run = this.run;
    if (!run) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: no parameters yet');
    checkParametersRun(run, req.run_id, 'GetParameters', call.getPeer());
    if (this.activity.busy) throw new RpcError(grpc.status.FAILED_PRECONDITION, `${this.activity.state === 'STEPPING' ? 'a step' : 'an evaluation'} is running; ask between steps`);
    await streamParameters(this, run, req, write);
    // every layer with its momentum: what a checkpoint reads
    if (req.include_momentum && (req.layers ?? []).length === 0) this.checkpointRead = { run: run.id, step: run.stepsDone };
  });

  /** The last GetParameters that sent the whole tower with its momentum (a checkpoint's read): of which run, after how many steps. */
  private checkpointRead: { run: string; step: number } | null = null;

  /** Asked to stop (worker --drain): every step reply says so from now on (StepReply.draining). */
  draining = false;

  /** A draining worker's parameters are in a checkpoint that is written: it may stop now (worker-command's drain). */
  drained = false;

  /** Called (once the refusal is on its way) when the worker is drained: the worker command stops it at once. */
  onDrained: (() => void) | null = null;

  /**
   * A draining worker's next Step or Evaluate after a checkpoint read its parameters: the coordinator sends it once
   * that checkpoint is written, so the worker refuses it (UNAVAILABLE: the coordinator waits for it to come back and
   * continues from that checkpoint) and is drained.
   */
  private checkDrained(run: Run, step: number): void {
    const read = this.checkpointRead;
    if (!this.draining || read === null || read.run !== run.id || step < read.step) return;
    this.drained = true;
    // stopped right after this refusal goes out (a graceful shutdown lets it finish), before the coordinator calls again
    setImmediate(() => this.onDrained?.());
    throw new RpcError(grpc.status.UNAVAILABLE, `worker ${this.tower} is draining (asked to stop): the checkpoint after step ${read.step} has its parameters, and it stops now`);
  }

  /**
   * What keeps this worker from stopping without loss, in words: the run that holds its lease (configured, not
   * released, its coordinator's connection open or its last call within the lease); null when nothing does.
   */
  heldBy(): string | null {
    return leaseRefusal({ run: this.run, runId: '', state: this.activity.state, leaseMs: this.leaseMs, connections: this.connections });
  }

  /**
   * A resumed run: this tower's parameters and momentum, and the step counter, from a checkpoint
   * (parameters.ts parameterSetter). Only right after Configure (no step or evaluation yet).
   */
  setParameters = clientStreamHandler<ParameterTensor, SetParametersReply>((call) => parameterSetter(this, call.getPeer()));

  /** The configured run and the state now (parameters.ts checks them while parameters arrive). */
  current(): { run: Run | null; state: WorkerState } {
    return { run: this.run, state: this.activity.state };
  }

  /** The end of a run's lease: another run may shake hands at once (the run stays configured for inspection). */
  release = unaryHandler<ReleaseRequest, ReleaseReply>(async (req) => {
    const run = this.run;
    if (!run || run.id !== req.run_id) return { released: false };
    // said once: a coordinator releases at the end of each run() and again as it exits
    if (!run.released) this.log(`run ${redactRunId(run.id)} released this worker`);
    run.released = true;
    return { released: true };
  });

  /** Why run `runId` may not take this worker (lease.ts); null when it may. */
  private leaseHolder(runId: string): string | null {
    return leaseRefusal({ run: this.run, runId, state: this.activity.state, leaseMs: this.leaseMs, connections: this.connections });
  }


  /** The run a peer's tensor is for, if this worker takes tensors for it (peer-service.ts). */
  acceptingRun(runId: string, fromTower: number): Run {
    const run = this.run;
    if (!run || runId !== run.id) throw new RpcError(grpc.status.FAILED_PRECONDITION, `tower ${this.tower} is not configured for run ${runId}`);
    if (this.activity.state === 'FAILED') throw new RpcError(grpc.status.FAILED_PRECONDITION, `tower ${this.tower} failed: ${this.activity.lastError}`);
    if (fromTower !== this.other) throw new RpcError(grpc.status.INVALID_ARGUMENT, `a tensor from tower ${fromTower} reached tower ${this.tower}`);
    return run;
  }

  private dropRun(reason: Error): void {
    const run = this.run;
    if (!run) return;
    run.abort?.abort(reason);
    run.mailbox.close(reason);
    run.peer.close();
    this.run = null;
    // the steps not traced to the end are not the next run's (nor this run's, configured again)
    this.trace?.forget();
    this.activity.state = 'IDLE';
  }

  /** Ends the run (if any) and releases the device. */
  shutdown(): void {
    this.dropRun(new Error('the worker is shutting down'));
    this.trace?.close();
    this.device.destroy();
  }
}
