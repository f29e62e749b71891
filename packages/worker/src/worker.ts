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
 */
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import {
  Device,
  Tower,
  concatTowers,
  initTowerParams,
  mean,
  padBatch,
  segmentModel,
  segmentOfLayer,
  sumSlices,
  takeBatch,
  topKCorrect,
  towerParamLayers,
  towerSlice,
  type FallbackPolicy,
  type ModelSpec,
  type RequestedBackend,
  type Segment,
  type StepContext,
  type TowerIndex,
  type TowerParams,
  type TowerTap,
} from '@alexnet-mp/core';
import {
  FEATURES,
  PROTOCOL_VERSION,
  crossingShape,
  decodeTensor,
  encodeTensor,
  formatAddress,
  identityDifferences,
  maxMessageBytes,
  modelIdentity,
  parseAddress,
  protocol,
  sizeLimitOptions,
  type ConfigureReply,
  type ConfigureRequest,
  type Direction,
  type EvalExchangeRequest,
  type EvaluateReply,
  type EvaluateRequest,
  type GetActivationsReply,
  type GetActivationsRequest,
  type GetParametersRequest,
  type ExchangeRequest,
  type HandshakeReply,
  type HandshakeRequest,
  type ModelIdentity,
  type ParameterTensor,
  type PeerHello,
  type SetParametersReply,
  type StatusReply,
  type StepReply,
  type StepRequest,
  type StepTiming,
  type Tensor,
  type WorkerState,
} from './protocol.js';
import { RpcError, clientStreamHandler, describeError, isServiceError, streamHandler, unary, unaryHandler } from './rpc.js';
import { Mailbox, Traffic, describePhase, evalPhase, mailKey, stepPhase, type Phase } from './exchange.js';
import { clientKeepaliveOptions, serverKeepaliveOptions } from './keepalive.js';
import { RefusalLog, listenSecurely, secureClient, serverInterceptors, type Security } from './auth.js';
import { checkFinite, checkHyper, checkLabels, checkRunId, checkStepImages } from './validate.js';
import { inputMeanFrom, normaliseImages, type InputNormalisation } from './images.js';
import { adapterMsg } from './adapter-report.js';

export interface WorkerOptions {
  readonly spec: ModelSpec;
  readonly tower: TowerIndex;
  readonly backend: RequestedBackend;
  /** `--device N`: Dawn's N-th WebGPU adapter (webgpu, auto); absent: the first GPU. webasm and cpu ignore it. */
  readonly device?: number;
  readonly host?: string;
  /** 0: the OS picks a free port (read it from `RunningWorker.port`). */
  readonly port?: number;
  /** The peer's HOST:PORT; when absent, the coordinator's Configure gives it. */
  readonly peer?: string;
  /** Largest batch accepted; sets the message size limits. */
  readonly maxBatch?: number;
  /** Pretend to speak another protocol version (tests of the refusal). */
  readonly protocolVersion?: number;
  readonly fallback?: FallbackPolicy;
  /** How long to wait for one tensor from the peer, or for the peer to take one. */
  readonly exchangeTimeoutMs?: number;
  readonly log?: (line: string) => void;
  /** Mutual TLS and/or a shared token, for this worker's server and its calls to the peer (auth.ts); none: plain gRPC. */
  readonly security?: Security;
}

export interface RunningWorker {
  readonly address: string;
  readonly port: number;
  readonly worker: TowerWorker;
  close(): Promise<void>;
}

export const DEFAULT_MAX_BATCH = 256;
const DEFAULT_EXCHANGE_TIMEOUT_MS = 10 * 60_000;
const HELLO_TIMEOUT_MS = 30_000;
/** Run ids remembered from handshakes (the oldest forgotten first). */
const MAX_HANDSHAKEN = 64;

interface Run {
  readonly id: string;
  readonly batch: number;
  readonly seed: number;
  /** Replaced by SetParameters (a resumed run). */
  tower: Tower;
  readonly peer: PeerLink;
  readonly mailbox: Mailbox;
  stepsDone: number;
  /** Evaluate calls done (the next one's number). */
  evaluationsDone: number;
  /** Traffic per step or evaluation (by phaseKey), created by whichever comes first: the peer's tensor or the call. */
  readonly phaseTraffic: Map<string, Traffic>;
  readonly total: Traffic;
  readonly evalTotal: Traffic;
  lastTraffic: Traffic;
  lastTiming: StepTiming;
  /** How this run's uint8 images become the network's input (images.ts). */
  readonly input: InputNormalisation;
  /** Towers for evaluation batch sizes other than the training batch, sharing the training tower's ParamStore. */
  readonly evalTowers: Map<number, Tower>;
  abort: AbortController | null;
}

/** The crossing exchanges of one step or evaluation, and the time spent blocked on them. */
interface Crossings {
  /** Sends `send` (if any) and takes the peer's tensor (if `take`), both at once. */
  cross(point: string, dir: Direction, send: Float32Array | null, take: boolean): Promise<Float32Array | null>;
  readonly exchangeMs: number;
}

/** The client side of the other worker's Peer service. */
class PeerLink {
  readonly client: grpc.Client;
  constructor(readonly address: string, limitBytes: number, security: Security | undefined) {
    this.client = secureClient(protocol().Peer, address, security, { ...sizeLimitOptions(limitBytes), ...clientKeepaliveOptions });
  }
  close(): void {
    this.client.close();
  }
}

const phaseKey = (p: Phase) => `${p.kind}/${p.n}`;

/** Inspection: read one layer's output in segment `segment` and stop the forward pass there. */
interface SegmentTap {
  readonly segment: number;
  readonly tap: TowerTap;
}

const zeroTiming = (): StepTiming => ({ total_ms: 0, compute_ms: 0, exchange_ms: 0, update_ms: 0 });

/** Mean softmax cross-entropy, in float64, of logits laid out [class][image]. */
export function meanCrossEntropy(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  const N = labels.length;
  let sum = 0;
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[c * N + n]!);
    let z = 0;
    for (let c = 0; c < classes; c++) z += Math.exp(logits[c * N + n]! - max);
    sum += max + Math.log(z) - logits[labels[n]! * N + n]!;
  }
  return sum / N;
}

export class TowerWorker {
  private state: WorkerState = 'IDLE';
  private run: Run | null = null;
  private handshaken = new Set<string>();
  private lastError = '';
  private readonly started = Date.now();
  readonly identity: ModelIdentity;
  readonly maxBatch: number;
  readonly limitBytes: number;
  private readonly segments: Segment[];
  private readonly points: string[];
  private readonly exchangeTimeoutMs: number;
  private readonly log: (line: string) => void;

  constructor(readonly o: WorkerOptions, readonly device: Device) {
    this.identity = modelIdentity(o.spec, o.protocolVersion ?? PROTOCOL_VERSION);
    this.maxBatch = o.maxBatch ?? DEFAULT_MAX_BATCH;
    this.limitBytes = maxMessageBytes(o.spec, this.maxBatch);
    this.exchangeTimeoutMs = o.exchangeTimeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS;
    this.log = o.log ?? (() => {});
    this.segments = segmentModel(o.spec);
    this.points = this.segments.filter((s) => s.crossing !== null).map((s) => s.crossing!);
    // the step below assumes the cuda-convnet2 layout of every preset: the last segment (fc8) runs on tower 0 only
    if (this.segments.findIndex((s) => s.tower0Only) !== this.segments.length - 1) throw new Error(`preset ${o.spec.name}: the classifier must be the last segment, on tower 0 only`);
  }

  /** The adapter index on webgpu; elsewhere the --device given (ignored there), 0 when none was. */
  get deviceIndex(): number {
    return this.device.adapter?.index ?? this.o.device ?? 0;
  }

  get tower(): TowerIndex {
    return this.o.tower;
  }

  private get other(): TowerIndex {
    return (1 - this.o.tower) as TowerIndex;
  }

  /** The crossing point at which only tower 1 sends forward and only tower 0 sends back (fc7, into the classifier). */
  private get classifierPoint(): string | null {
    const last = this.segments[this.segments.length - 1]!;
    return last.tower0Only ? last.crossing : null;
  }

  // ---------------------------------------------------------------- Worker service

  handshake = unaryHandler<HandshakeRequest, HandshakeReply>(async (req) => {
    checkRunId(req.run_id, 'Handshake');
    const diffs = identityDifferences(req.model, this.identity, 'coordinator', 'worker');
    if (req.tower !== this.tower) {
      diffs.push(`tower differs (the coordinator expects tower ${req.tower} at this address, this worker is tower ${this.tower}; list the tower 0 worker first in --workers)`);
    }
    if (diffs.length > 0) {
      this.log(`refused handshake for run ${req.run_id}: ${diffs.join('; ')}`);
      throw new RpcError(grpc.status.FAILED_PRECONDITION, diffs.join('; '));
    }
    this.handshaken.add(req.run_id);
    // a bounded memory: a caller may shake hands without end (Configure follows its handshake at once)
    if (this.handshaken.size > MAX_HANDSHAKEN) this.handshaken.delete(this.handshaken.values().next().value!);
    return {
      model: this.identity,
      tower: this.tower,
      backend: this.device.mode,
      device: this.deviceIndex,
      peer_address: this.o.peer ?? '',
      max_batch: this.maxBatch,
      hostname: os.hostname(),
      pid: process.pid,
      features: [...FEATURES],
      adapter: adapterMsg(this.device.adapter),
    };
  });

  configure = unaryHandler<ConfigureRequest, ConfigureReply>(async (req) => {
    if (!this.handshaken.has(req.run_id)) throw new RpcError(grpc.status.FAILED_PRECONDITION, `run ${req.run_id} has not shaken hands with this worker`);
    if (this.busy) throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: ${this.state === 'STEPPING' ? 'a step' : 'an evaluation'} of run ${this.run?.id} is running`);
    if (!Number.isInteger(req.batch) || req.batch < 1 || req.batch > this.maxBatch) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `batch ${req.batch} is outside 1..${this.maxBatch} (start the worker with a larger --max-batch)`);
    }
    const mean = inputMeanFrom(req.input_mean, this.o.spec.inputChannels);
    if (typeof mean === 'string') throw new RpcError(grpc.status.INVALID_ARGUMENT, mean);
    const peerAddress = this.o.peer ?? req.peer_address;
    if (!peerAddress) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'no peer address: start the worker with --peer or have the coordinator send one');
    try {
      parseAddress(peerAddress, 'peer address');
    } catch (e) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, (e as Error).message);
    }
    this.dropRun(new Error(`run ${this.run?.id} was replaced by run ${req.run_id}`));
    const peer = new PeerLink(peerAddress, this.limitBytes, this.o.security);
    try {
      await this.hello(peer, req.run_id);
    } catch (e) {
      peer.close();
      throw e;
    }
    const params = initTowerParams(this.o.spec, this.tower, req.seed);
    const tower = new Tower(this.device, this.o.spec, this.tower, req.batch, params);
    this.run = {
      id: req.run_id,
      batch: req.batch,
      seed: req.seed,
      tower,
      peer,
      mailbox: new Mailbox(),
      stepsDone: 0,
      evaluationsDone: 0,
      phaseTraffic: new Map(),
      total: new Traffic(this.points),
      evalTotal: new Traffic(this.points),
      lastTraffic: new Traffic(this.points),
      lastTiming: zeroTiming(),
      input: { mean, scale: this.o.spec.inputScale },
      evalTowers: new Map(),
      abort: null,
    };
    this.state = 'READY';
    this.lastError = '';
    let parameters = 0;
    for (const p of params.values()) parameters += p.w.length + p.b.length;
    this.log(`configured for run ${req.run_id}: batch ${req.batch}, seed ${req.seed}, ${parameters} parameters, input (u8 - [${mean.map((m) => m.toFixed(1)).join(', ')}]) / ${this.o.spec.inputScale}, peer ${peerAddress}`);
    return {
      tower: this.tower,
      parameters,
      peer_address: peerAddress,
      crossings: this.points.map((point) => ({ point, floats: crossingShape(this.o.spec, point, req.batch).reduce((a, b) => a * b, 1) })),
    };
  });

  private async hello(peer: PeerLink, runId: string): Promise<void> {
    let reply: PeerHello;
    try {
      reply = await unary<PeerHello, PeerHello>(peer.client, 'Hello', { model: this.identity, tower: this.tower, run_id: runId }, { timeoutMs: HELLO_TIMEOUT_MS, waitForReady: true });
    } catch (e) {
      const code = isServiceError(e) && e.code === grpc.status.FAILED_PRECONDITION ? grpc.status.FAILED_PRECONDITION : grpc.status.UNAVAILABLE;
      throw new RpcError(code, `peer at ${peer.address} ${code === grpc.status.FAILED_PRECONDITION ? 'refused us' : 'did not answer'}: ${describeError(e)}`);
    }
    const diffs = identityDifferences(this.identity, reply.model, `tower ${this.tower}`, `peer tower ${reply.tower}`);
    if (reply.tower !== this.other) diffs.push(`the peer at ${peer.address} is tower ${reply.tower}, not tower ${this.other}`);
    if (diffs.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, `peer at ${peer.address}: ${diffs.join('; ')}`);
  }

  step = unaryHandler<StepRequest, StepReply>(async (req, call) => {
    const run = this.run;
    if (!run || this.state === 'IDLE') throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: call Configure first');
    if (req.run_id !== run.id) throw new RpcError(grpc.status.FAILED_PRECONDITION, `run ${req.run_id} is not the configured run ${run.id}`);
    this.checkIdle(run);
    if (req.step !== run.stepsDone) throw new RpcError(grpc.status.FAILED_PRECONDITION, `step ${req.step} out of order: this worker is at step ${run.stepsDone}`);
    checkStepImages(this.o.spec, run.batch, req.images);
    checkLabels(this.o.spec, req.labels, run.batch, 'Step');
    checkHyper(req.hyper);

    return this.guarded(run, stepPhase(req.step), 'STEPPING', call, (signal) => this.runStep(run, req, signal));
  });

  evaluate = unaryHandler<EvaluateRequest, EvaluateReply>(async (req, call) => {
    const { run, n } = this.checkEvaluation(req);
    checkLabels(this.o.spec, req.labels, n, 'Evaluate', true);
    return this.guarded(run, evalPhase(req.evaluation), 'EVALUATING', call, (signal) => this.runEvaluation(run, req, n, signal));
  });

  /** An Evaluate or GetActivations request's run, checked (configured, idle, in order), and its number of images. */
  private checkEvaluation(req: { run_id: string; step: number; evaluation: number; images: Uint8Array }): { run: Run; n: number } {
    const run = this.run;
    if (!run || this.state === 'IDLE') throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: call Configure first');
    if (req.run_id !== run.id) throw new RpcError(grpc.status.FAILED_PRECONDITION, `run ${req.run_id} is not the configured run ${run.id}`);
    this.checkIdle(run);
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
  getActivations = unaryHandler<GetActivationsRequest, GetActivationsReply>(async (req, call) => {
    const segment = segmentOfLayer(this.segments, req.layer);
    if (segment < 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no layer "${req.layer}" in preset ${this.o.spec.name} (layers: ${this.o.spec.layers.map((l) => l.name).join(', ')})`);
    const { run, n } = this.checkEvaluation(req);
    return this.guarded(run, evalPhase(req.evaluation), 'EVALUATING', call, async (signal) => {
      const tap: TowerTap = { layer: req.layer };
      const pass = await this.evaluationPass(run, req.evaluation, req.images, n, signal, { segment, tap });
      const plan = this.segments[segment]!.plans.find((p) => p.layer.name === req.layer)!;
      const o = plan.outShape;
      const shape = o.h === 1 && o.w === 1 ? [o.c, n] : [o.c, n, o.h, o.w];
      return {
        evaluation: req.evaluation,
        tower: this.tower,
        layer: req.layer,
        has_activations: tap.out !== undefined,
        activations: tap.out ? encodeTensor(shape, tap.out) : null,
        timing: pass.timing,
        traffic: pass.traffic.list(),
      };
    });
  });

  private get busy(): boolean {
    return this.state === 'STEPPING' || this.state === 'EVALUATING';
  }

  /** Refuses a step or evaluation while another runs or after a failure. */
  private checkIdle(run: Run): void {
    if (this.state === 'STEPPING') throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: step ${run.stepsDone} is running`);
    if (this.state === 'EVALUATING') throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: evaluation ${run.evaluationsDone} is running`);
    if (this.state === 'FAILED') throw new RpcError(grpc.status.FAILED_PRECONDITION, `the run failed earlier (${this.lastError}); configure again`);
  }

  /**
   * Runs a step or an evaluation in state `state`: the coordinator cancelling the call aborts it;
   * on any failure the worker is FAILED (the peer may be waiting for a tensor that will never come).
   */
  private async guarded<T>(run: Run, phase: Phase, state: 'STEPPING' | 'EVALUATING', call: grpc.ServerUnaryCall<unknown, unknown>, f: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const what = describePhase(phase);
    this.state = state;
    const abort = new AbortController();
    run.abort = abort;
    const onCancel = () => abort.abort(new RpcError(grpc.status.CANCELLED, `${what} cancelled by the coordinator`));
    call.on('cancelled', onCancel);
    try {
      const reply = await f(abort.signal);
      this.state = 'READY';
      return reply;
    } catch (e) {
      const err = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason : e;
      this.state = 'FAILED';
      this.lastError = `${what}: ${describeError(err)}`;
      run.mailbox.close(new Error(`the run failed at ${what}`));
      this.log(`${what} failed: ${describeError(err)}`);
      if (err instanceof RpcError) throw err;
      throw new RpcError(isServiceError(err) ? err.code : grpc.status.INTERNAL, `tower ${this.tower}, ${what}: ${describeError(err)}`);
    } finally {
      run.abort = null;
      call.removeListener('cancelled', onCancel);
    }
  }

  status = unaryHandler<unknown, StatusReply>(async () => {
    const run = this.run;
    return {
      model: this.identity,
      tower: this.tower,
      backend: this.device.mode,
      device: this.deviceIndex,
      state: this.state,
      run_id: run?.id ?? '',
      batch: run?.batch ?? 0,
      steps_done: run?.stepsDone ?? 0,
      last_error: this.lastError,
      peer_address: run?.peer.address ?? this.o.peer ?? '',
      last_step_traffic: (run?.lastTraffic ?? new Traffic(this.points)).list(),
      run_traffic: (run?.total ?? new Traffic(this.points)).list(),
      last_step_timing: run?.lastTiming ?? zeroTiming(),
      uptime_s: (Date.now() - this.started) / 1000,
      pid: process.pid,
      evaluations_done: run?.evaluationsDone ?? 0,
      eval_traffic: (run?.evalTotal ?? new Traffic(this.points)).list(),
      adapter: adapterMsg(this.device.adapter),
    };
  });

  getParameters = streamHandler<GetParametersRequest, ParameterTensor>(async (req, write) => {
    const run = this.run;
    if (!run) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: no parameters yet');
    if (this.busy) throw new RpcError(grpc.status.FAILED_PRECONDITION, `${this.state === 'STEPPING' ? 'a step' : 'an evaluation'} is running; ask between steps`);
    const layers = towerParamLayers(this.o.spec, this.tower);
    const only = req.layers ?? [];
    const unknown = only.filter((name) => !layers.some((l) => l.name === name));
    if (unknown.length > 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${this.tower} has no parameters in ${unknown.join(', ')} (layers with parameters: ${layers.map((l) => l.name).join(', ')})`);
    const step = run.stepsDone;
    const params = await run.tower.syncParams();
    for (const l of layers) {
      if (only.length > 0 && !only.includes(l.name)) continue;
      const p = params.get(l.name)!;
      await write({ layer: l.name, kind: 'w', tensor: encodeTensor(l.shape, p.w), step });
      await write({ layer: l.name, kind: 'b', tensor: encodeTensor([l.shape[0]], p.b), step });
      if (req.include_momentum) {
        await write({ layer: l.name, kind: 'vw', tensor: encodeTensor(l.shape, p.vw), step });
        await write({ layer: l.name, kind: 'vb', tensor: encodeTensor([l.shape[0]], p.vb), step });
      }
    }
  });

  /**
   * A resumed run: this tower's parameters and momentum, and the step counter, from a checkpoint.
   * Only right after Configure (no step or evaluation yet); checks every tensor before changing anything.
   */
  setParameters = clientStreamHandler<ParameterTensor, SetParametersReply>(async (msgs) => {
    const run = this.run;
    if (!run || this.state === 'IDLE') throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: call Configure first');
    if (this.state !== 'READY' || run.stepsDone !== 0 || run.evaluationsDone !== 0) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `parameters are set only right after Configure (this worker is ${this.state}, ${run.stepsDone} steps and ${run.evaluationsDone} evaluations done)`);
    }
    const layers = towerParamLayers(this.o.spec, this.tower);
    const got = new Map<string, Float32Array>();
    let step: number | null = null;
    for (const m of msgs) {
      const l = layers.find((x) => x.name === m.layer);
      if (!l) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${this.tower} has no layer ${m.layer}`);
      if (!['w', 'b', 'vw', 'vb'].includes(m.kind)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${m.layer}: unknown kind "${m.kind}"`);
      if (step !== null && m.step !== step) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tensors for steps ${step} and ${m.step} in one call`);
      step = m.step;
      const shape = m.kind === 'w' || m.kind === 'vw' ? l.shape : [l.shape[0]];
      try {
        const x = decodeTensor(m.tensor, shape);
        checkFinite(x, `${m.layer}.${m.kind}`);
        got.set(`${m.layer}/${m.kind}`, x);
      } catch (e) {
        if (e instanceof RpcError) throw e;
        throw new RpcError(grpc.status.INVALID_ARGUMENT, `${m.layer}.${m.kind}: ${(e as Error).message}`);
      }
    }
    const params: TowerParams = new Map();
    for (const l of layers) {
      const take = (k: string) => {
        const x = got.get(`${l.name}/${k}`);
        if (!x) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no ${k} tensor for ${l.name}: send every layer's w, b, vw and vb`);
        return x;
      };
      params.set(l.name, { w: take('w'), b: take('b'), vw: take('vw'), vb: take('vb') });
    }
    if (this.state !== 'READY' || this.run !== run) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'the run changed while the parameters arrived');
    run.tower = new Tower(this.device, this.o.spec, this.tower, run.batch, params);
    run.evalTowers.clear();
    this.device.release();
    run.stepsDone = step ?? 0;
    run.mailbox.dropBefore(stepPhase(run.stepsDone));
    this.log(`run ${run.id}: parameters and momentum set from the coordinator (${msgs.length} tensors), continuing at step ${run.stepsDone}`);
    return { tower: this.tower, step: run.stepsDone, tensors: msgs.length };
  });

  // ---------------------------------------------------------------- Peer service

  peerHello = unaryHandler<PeerHello, PeerHello>(async (req) => {
    const diffs = identityDifferences(req.model, this.identity, `tower ${req.tower}`, `tower ${this.tower}`);
    if (req.tower !== this.other) diffs.push(`both workers are tower ${this.tower}: start one with --tower 0 and the other with --tower 1`);
    if (diffs.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, diffs.join('; '));
    return { model: this.identity, tower: this.tower, run_id: this.run?.id ?? '' };
  });

  exchange = unaryHandler<ExchangeRequest, object>(async (req) => {
    const run = this.acceptingRun(req.run_id, req.from_tower);
    if (req.step !== run.stepsDone) throw new RpcError(grpc.status.FAILED_PRECONDITION, `a tensor for step ${req.step} reached tower ${this.tower} at step ${run.stepsDone}`);
    this.accept(run, stepPhase(req.step), req.point, req.direction, run.batch, req.tensor);
    return {};
  });

  evalExchange = unaryHandler<EvalExchangeRequest, object>(async (req) => {
    const run = this.acceptingRun(req.run_id, req.from_tower);
    if (req.evaluation !== run.evaluationsDone) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `a tensor for evaluation ${req.evaluation} reached tower ${this.tower} at evaluation ${run.evaluationsDone}`);
    }
    if (!Number.isInteger(req.batch) || req.batch < 1 || req.batch > this.maxBatch) throw new RpcError(grpc.status.INVALID_ARGUMENT, `evaluation batch ${req.batch} is outside 1..${this.maxBatch}`);
    this.accept(run, evalPhase(req.evaluation), req.point, 'FORWARD', req.batch, req.tensor);
    return {};
  });

  /** The run a peer's tensor is for, if this worker takes tensors for it. */
  private acceptingRun(runId: string, fromTower: number): Run {
    const run = this.run;
    if (!run || runId !== run.id) throw new RpcError(grpc.status.FAILED_PRECONDITION, `tower ${this.tower} is not configured for run ${runId}`);
    if (this.state === 'FAILED') throw new RpcError(grpc.status.FAILED_PRECONDITION, `tower ${this.tower} failed: ${this.lastError}`);
    if (fromTower !== this.other) throw new RpcError(grpc.status.INVALID_ARGUMENT, `a tensor from tower ${fromTower} reached tower ${this.tower}`);
    return run;
  }

  /** Checks a peer's tensor (point, direction, shape for `batch` images), counts it and leaves it in the mailbox. */
  private accept(run: Run, phase: Phase, point: string, dir: Direction, batch: number, tensor: Tensor): void {
    if (!this.points.includes(point)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no crossing point ${point}`);
    if (dir !== 'FORWARD' && dir !== 'BACKWARD') throw new RpcError(grpc.status.INVALID_ARGUMENT, `direction ${dir}`);
    if (!this.receives(point, dir)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${this.tower} takes no ${dir.toLowerCase()} tensor at ${point}`);
    let x: Float32Array;
    try {
      x = decodeTensor(tensor, crossingShape(this.o.spec, point, batch));
    } catch (e) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `${point} ${dir.toLowerCase()}: ${(e as Error).message}`);
    }
    this.trafficOf(run, phase).received(point, dir, tensor.data.byteLength);
    try {
      run.mailbox.put(mailKey(phase, point, dir), x);
    } catch (e) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, (e as Error).message);
    }
  }

  /** What tower t takes from its peer: everything but tower 0's fc7 (forward) and tower 1's d(fc7) slice sent by tower 1 (backward). */
  private receives(point: string, dir: Direction): boolean {
    if (point !== this.classifierPoint) return true;
    return dir === 'FORWARD' ? this.tower === 0 : this.tower === 1;
  }

  private trafficOf(run: Run, phase: Phase): Traffic {
    const key = phaseKey(phase);
    let t = run.phaseTraffic.get(key);
    if (!t) {
      t = new Traffic(this.points);
      run.phaseTraffic.set(key, t);
    }
    return t;
  }

  /**
   * The exchanges of one step or evaluation of `batch` images: sending with Peer.Exchange (steps) or
   * Peer.EvalExchange (evaluations), taking from the mailbox under the phase's keys; blocked time counted.
   */
  private crossings(run: Run, phase: Phase, batch: number, traffic: Traffic, signal: AbortSignal): Crossings {
    let exchangeMs = 0;
    const what = describePhase(phase);
    const cross = async (point: string, dir: Direction, send: Float32Array | null, take: boolean): Promise<Float32Array | null> => {
      signal.throwIfAborted();
      const ts = performance.now();
      const jobs: Promise<unknown>[] = [];
      let got: Float32Array | null = null;
      if (send) jobs.push(this.send(run, phase, batch, point, dir, send, signal, traffic));
      if (take) {
        jobs.push(
          run.mailbox
            .take(mailKey(phase, point, dir), signal, this.exchangeTimeoutMs, () => `${point} ${dir.toLowerCase()} tensor of ${what}`)
            .then((x) => {
              // a step's tensors were checked on arrival; an evaluation's may arrive before its batch size is known here
              const want = crossingShape(this.o.spec, point, batch).reduce((a, b) => a * b, 1);
              if (x.length !== want) throw new RpcError(grpc.status.FAILED_PRECONDITION, `the peer's ${point} tensor of ${what} has ${x.length} floats, this worker expects ${want} (the two were sent different batches)`);
              got = x;
            }),
        );
      }
      await Promise.all(jobs);
      exchangeMs += performance.now() - ts;
      return got;
    };
    return {
      cross,
      get exchangeMs() {
        return exchangeMs;
      },
    };
  }

  /**
   * The forward pass of tower `tw` with the crossing exchanges: [tower 0's; tower 1's] into every
   * segment after a crossing; at fc7 only tower 1 sends. Returns the logits (host) on tower 0, null on tower 1.
   */
  private async forwardPass(tw: Tower, images: Float32Array, ctx: StepContext, x: Crossings, tap?: SegmentTap): Promise<Float32Array | null> {
    const t = this.tower;
    const segs = this.segments;
    const last = segs.length - 1;
    // with a tap (inspection), both towers stop after the tapped segment
    const tapAt = (i: number) => (tap?.segment === i ? tap.tap : undefined);
    let out = await tw.forwardSegment(0, images, ctx, tapAt(0));
    if (tap?.segment === 0) return null;
    for (let i = 1; i <= last; i++) {
      const point = segs[i]!.crossing!;
      if (segs[i]!.tower0Only) {
        // the classifier runs on tower 0 only: tower 1 sends its fc7, tower 0 sends nothing
        if (t === 1) {
          await x.cross(point, 'FORWARD', out, false);
          return null;
        }
        const theirs = (await x.cross(point, 'FORWARD', null, true))!;
        return tw.forwardSegment(i, concatTowers(out, theirs), ctx, tapAt(i));
      }
      const theirs = (await x.cross(point, 'FORWARD', out, true))!;
      out = await tw.forwardSegment(i, t === 0 ? concatTowers(out, theirs) : concatTowers(theirs, out), ctx, tapAt(i));
      if (tap?.segment === i) return null;
    }
    throw new Error('the model has no classifier segment');
  }

  // ---------------------------------------------------------------- the step

  private async runStep(run: Run, req: StepRequest, signal: AbortSignal): Promise<StepReply> {
    const t0 = performance.now();
    const t = this.tower;
    const tw = run.tower;
    const segs = this.segments;
    const last = segs.length - 1;
    const step = req.step;
    const phase = stepPhase(step);
    const ctx: StepContext = { seed: run.seed, step, train: true };
    const traffic = this.trafficOf(run, phase);
    const x = this.crossings(run, phase, run.batch, traffic, signal);
    const cross = x.cross;

    // ---- forward
    await this.forwardPass(tw, normaliseImages(req.images, run.input), ctx, x);

    // ---- loss (tower 0) and backward
    const labels = Float32Array.from(req.labels);
    let lossInfo: { loss: number; correct: number; top5: number } | null = null;
    let d: Float32Array;
    const fc7 = segs[last]!.crossing!;
    if (t === 0) {
      const { losses, logits, dlogits } = await tw.lossAndGradient(labels);
      const classes = this.o.spec.classes;
      lossInfo = { loss: mean(losses), correct: topKCorrect(logits, labels, classes, 1), top5: topKCorrect(logits, labels, classes, Math.min(5, classes)) };
      // the classifier gives the gradient of both towers' fc7: tower 1's half goes back to it
      const dIn = (await tw.backwardSegment(last, dlogits))!;
      await cross(fc7, 'BACKWARD', towerSlice(dIn, 1), false);
      d = towerSlice(dIn, 0);
    } else {
      d = (await cross(fc7, 'BACKWARD', null, true))!;
    }
    for (let i = last - 1; i >= 0; i--) {
      const g = await tw.backwardSegment(i, d);
      if (i > 0) {
        const theirs = (await cross(segs[i]!.crossing!, 'BACKWARD', towerSlice(g!, this.other), true))!;
        const mine = towerSlice(g!, t);
        d = t === 0 ? sumSlices(mine, theirs) : sumSlices(theirs, mine);
      }
    }

    // ---- update
    signal.throwIfAborted();
    const tu = performance.now();
    await tw.update({ lr: req.hyper.lr, momentum: req.hyper.momentum, weightDecay: req.hyper.weight_decay, decayBiases: req.hyper.no_bias_decay !== true });
    const updateMs = performance.now() - tu;

    run.stepsDone = step + 1;
    run.phaseTraffic.delete(phaseKey(phase));
    run.mailbox.dropBefore(stepPhase(run.stepsDone));
    run.total.add(traffic);
    run.lastTraffic = traffic;
    const total = performance.now() - t0;
    run.lastTiming = { total_ms: total, compute_ms: total - x.exchangeMs - updateMs, exchange_ms: x.exchangeMs, update_ms: updateMs };
    return {
      step,
      tower: t,
      has_loss: lossInfo !== null,
      loss: lossInfo?.loss ?? 0,
      correct: lossInfo?.correct ?? 0,
      correct_top5: lossInfo?.top5 ?? 0,
      batch: run.batch,
      timing: run.lastTiming,
      traffic: traffic.list(),
    };
  }

  /** Pushes one crossing tensor of a step (Exchange) or an evaluation (EvalExchange) to the peer and waits for its acknowledgement. */
  private async send(run: Run, phase: Phase, batch: number, point: string, dir: Direction, x: Float32Array, signal: AbortSignal, traffic: Traffic): Promise<void> {
    const tensor = encodeTensor(crossingShape(this.o.spec, point, batch), x);
    try {
      if (phase.kind === 'step') {
        const req: ExchangeRequest = { run_id: run.id, step: phase.n, point, direction: dir, from_tower: this.tower, tensor };
        await unary<ExchangeRequest, object>(run.peer.client, 'Exchange', req, { timeoutMs: this.exchangeTimeoutMs, signal });
      } else {
        const req: EvalExchangeRequest = { run_id: run.id, evaluation: phase.n, point, from_tower: this.tower, batch, tensor };
        await unary<EvalExchangeRequest, object>(run.peer.client, 'EvalExchange', req, { timeoutMs: this.exchangeTimeoutMs, signal });
      }
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      const code = isServiceError(e) ? e.code : grpc.status.INTERNAL;
      const unimplemented = code === grpc.status.UNIMPLEMENTED ? ' (the peer is an older build without evaluation)' : '';
      throw new RpcError(
        code === grpc.status.DEADLINE_EXCEEDED || code === grpc.status.UNIMPLEMENTED ? code : grpc.status.UNAVAILABLE,
        `tower ${this.tower} could not send ${point} (${dir.toLowerCase()}) of ${describePhase(phase)} to its peer at ${run.peer.address}: ${describeError(e)}${unimplemented}`,
      );
    }
    traffic.sent(point, dir, tensor.data.byteLength);
  }

  // ---------------------------------------------------------------- an evaluation

  /**
   * The Tower that evaluates `n` images: the training tower up to the training batch (a smaller batch runs
   * padded, batch-padding.ts), else one per size (cached) sharing its parameters.
   */
  private evalTower(run: Run, n: number): Tower {
    if (n <= run.batch) return run.tower;
    let tw = run.evalTowers.get(n);
    if (!tw) {
      tw = new Tower(this.device, this.o.spec, this.tower, n, run.tower.store);
      run.evalTowers.set(n, tw);
      this.log(`built the evaluation tower for batch ${n}`);
    }
    return tw;
  }

  /**
   * forwardPass of `n` images in tower `tw`, built for more: the images, the peer's crossing tensors and the
   * tapped output padded with zero images, what is sent and the logits cut back to `n` (the wire sees `n`).
   */
  private async paddedForwardPass(tw: Tower, images: Float32Array, n: number, ctx: StepContext, x: Crossings, tap?: SegmentTap): Promise<Float32Array | null> {
    const N = tw.batch;
    const spec = this.o.spec;
    // a layer's output channels in this tower (the first dimension of its [channel][image][...] tensor)
    const channelsAt = (layer: string) => crossingShape(spec, layer, n)[0]!;
    const padded: Crossings = {
      cross: async (point, dir, send, take) => {
        const got = await x.cross(point, dir, send && takeBatch(send, channelsAt(point), N, n), take);
        return got && padBatch(got, channelsAt(point), n, N);
      },
      get exchangeMs() {
        return x.exchangeMs;
      },
    };
    const logits = await this.forwardPass(tw, padBatch(images, spec.inputChannels, n, N), ctx, padded, tap);
    if (tap?.tap.out) tap.tap.out = takeBatch(tap.tap.out, channelsAt(tap.tap.layer), N, n);
    return logits && takeBatch(logits, spec.classes, N, n);
  }

  /**
   * The forward pass of evaluation number `evaluation` (no dropout) on `n` images with its crossing exchanges
   * (EvalExchange), counted as an evaluation; with `tap`, stopped after the tapped segment.
   */
  private async evaluationPass(run: Run, evaluation: number, images: Uint8Array, n: number, signal: AbortSignal, tap?: SegmentTap): Promise<{ logits: Float32Array | null; timing: StepTiming; traffic: Traffic }> {
    const t0 = performance.now();
    const phase = evalPhase(evaluation);
    const traffic = this.trafficOf(run, phase);
    const x = this.crossings(run, phase, n, traffic, signal);
    // no dropout (train: false); the seed and step do not matter then
    const ctx: StepContext = { seed: run.seed, step: run.stepsDone, train: false };
    const tw = this.evalTower(run, n);
    let logits: Float32Array | null;
    try {
      if (tw.batch === n) logits = await this.forwardPass(tw, normaliseImages(images, run.input), ctx, x, tap);
      else logits = await this.paddedForwardPass(tw, normaliseImages(images, run.input), n, ctx, x, tap);
    } finally {
      // the forward's intermediates (nothing else is resident between steps but the parameters)
      this.device.release();
    }
    run.evaluationsDone = evaluation + 1;
    run.phaseTraffic.delete(phaseKey(phase));
    run.mailbox.dropBefore(evalPhase(run.evaluationsDone));
    run.evalTotal.add(traffic);
    const total = performance.now() - t0;
    return { logits, timing: { total_ms: total, compute_ms: total - x.exchangeMs, exchange_ms: x.exchangeMs, update_ms: 0 }, traffic };
  }

  private async runEvaluation(run: Run, req: EvaluateRequest, n: number, signal: AbortSignal): Promise<EvaluateReply> {
    const { logits, timing, traffic } = await this.evaluationPass(run, req.evaluation, req.images, n, signal);
    const classes = this.o.spec.classes;
    const hasLoss = logits !== null && req.labels.length === n;
    return {
      evaluation: req.evaluation,
      tower: this.tower,
      batch: n,
      has_loss: hasLoss,
      loss: hasLoss ? meanCrossEntropy(logits!, req.labels, classes) : 0,
      correct: hasLoss ? topKCorrect(logits!, req.labels, classes, 1) : 0,
      correct_top5: hasLoss ? topKCorrect(logits!, req.labels, classes, Math.min(5, classes)) : 0,
      logits: logits ? encodeTensor([classes, n], logits) : null,
      timing,
      traffic: traffic.list(),
    };
  }

  private dropRun(reason: Error): void {
    const run = this.run;
    if (!run) return;
    run.abort?.abort(reason);
    run.mailbox.close(reason);
    run.peer.close();
    this.run = null;
    this.state = 'IDLE';
  }

  /** Ends the run (if any) and releases the device. */
  shutdown(): void {
    this.dropRun(new Error('the worker is shutting down'));
    this.device.destroy();
  }
}

/** Creates the device, binds the server and starts serving. */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const device = await Device.create(o.backend, o.fallback ?? { onFallback: 'throw' }, o.device === undefined ? {} : { device: o.device });
  const worker = new TowerWorker(o, device);
  // calls without the credentials are refused (and logged) before they reach a handler
  const refusals = new RefusalLog(o.log ?? (() => {}));
  const server = new grpc.Server({ ...sizeLimitOptions(worker.limitBytes), ...serverKeepaliveOptions, interceptors: serverInterceptors(o.security, refusals) });
  const { Worker, Peer } = protocol();
  server.addService(Worker.service, {
    Handshake: worker.handshake,
    Configure: worker.configure,
    Step: worker.step,
    Evaluate: worker.evaluate,
    Status: worker.status,
    GetParameters: worker.getParameters,
    SetParameters: worker.setParameters,
    GetActivations: worker.getActivations,
  });
  server.addService(Peer.service, { Hello: worker.peerHello, Exchange: worker.exchange, EvalExchange: worker.evalExchange });
  const host = o.host ?? '127.0.0.1';
  const { port, close } = await listenSecurely(server, host, o.port ?? 0, o.security, refusals);
  const address = formatAddress({ host, port });
  return {
    address,
    port,
    worker,
    close: () => {
      worker.shutdown();
      return close();
    },
  };
}
