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
 */
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import {
  Device,
  Tower,
  concatTowers,
  initTowerParams,
  mean,
  segmentModel,
  sumSlices,
  topKCorrect,
  towerParamLayers,
  towerSlice,
  type FallbackPolicy,
  type ModelSpec,
  type RequestedBackend,
  type Segment,
  type StepContext,
  type TowerIndex,
} from '@alexnet-mp/core';
import {
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
  type ExchangeRequest,
  type HandshakeReply,
  type HandshakeRequest,
  type ModelIdentity,
  type ParameterTensor,
  type PeerHello,
  type StatusReply,
  type StepReply,
  type StepRequest,
  type StepTiming,
  type WorkerState,
} from './protocol.js';
import { RpcError, describeError, isServiceError, streamHandler, unary, unaryHandler } from './rpc.js';
import { Mailbox, Traffic, mailKey } from './exchange.js';
import { normaliseImages } from './images.js';

export interface WorkerOptions {
  readonly spec: ModelSpec;
  readonly tower: TowerIndex;
  readonly backend: RequestedBackend;
  /** Device index, reported in the handshake and status. */
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

interface Run {
  readonly id: string;
  readonly batch: number;
  readonly seed: number;
  readonly tower: Tower;
  readonly peer: PeerLink;
  readonly mailbox: Mailbox;
  stepsDone: number;
  /** Traffic per step, created by whichever comes first: the peer's tensor or the Step call. */
  readonly stepTraffic: Map<number, Traffic>;
  readonly total: Traffic;
  lastTraffic: Traffic;
  lastTiming: StepTiming;
  abort: AbortController | null;
}

/** The client side of the other worker's Peer service. */
class PeerLink {
  readonly client: grpc.Client;
  constructor(readonly address: string, limitBytes: number) {
    const Peer = protocol().Peer;
    this.client = new Peer(address, grpc.credentials.createInsecure(), sizeLimitOptions(limitBytes));
  }
  close(): void {
    this.client.close();
  }
}

const zeroTiming = (): StepTiming => ({ total_ms: 0, compute_ms: 0, exchange_ms: 0, update_ms: 0 });

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
    const diffs = identityDifferences(req.model, this.identity, 'coordinator', 'worker');
    if (req.tower !== this.tower) {
      diffs.push(`tower differs (the coordinator expects tower ${req.tower} at this address, this worker is tower ${this.tower}; list the tower 0 worker first in --workers)`);
    }
    if (diffs.length > 0) {
      this.log(`refused handshake for run ${req.run_id}: ${diffs.join('; ')}`);
      throw new RpcError(grpc.status.FAILED_PRECONDITION, diffs.join('; '));
    }
    if (!req.run_id) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'handshake without a run id');
    this.handshaken.add(req.run_id);
    return {
      model: this.identity,
      tower: this.tower,
      backend: this.device.mode,
      device: this.o.device ?? 0,
      peer_address: this.o.peer ?? '',
      max_batch: this.maxBatch,
      hostname: os.hostname(),
      pid: process.pid,
    };
  });

  configure = unaryHandler<ConfigureRequest, ConfigureReply>(async (req) => {
    if (!this.handshaken.has(req.run_id)) throw new RpcError(grpc.status.FAILED_PRECONDITION, `run ${req.run_id} has not shaken hands with this worker`);
    if (this.state === 'STEPPING') throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: a step of run ${this.run?.id} is running`);
    if (!Number.isInteger(req.batch) || req.batch < 1 || req.batch > this.maxBatch) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `batch ${req.batch} is outside 1..${this.maxBatch} (start the worker with a larger --max-batch)`);
    }
    const peerAddress = this.o.peer ?? req.peer_address;
    if (!peerAddress) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'no peer address: start the worker with --peer or have the coordinator send one');
    try {
      parseAddress(peerAddress, 'peer address');
    } catch (e) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, (e as Error).message);
    }
    this.dropRun(new Error(`run ${this.run?.id} was replaced by run ${req.run_id}`));
    const peer = new PeerLink(peerAddress, this.limitBytes);
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
      stepTraffic: new Map(),
      total: new Traffic(this.points),
      lastTraffic: new Traffic(this.points),
      lastTiming: zeroTiming(),
      abort: null,
    };
    this.state = 'READY';
    this.lastError = '';
    let parameters = 0;
    for (const p of params.values()) parameters += p.w.length + p.b.length;
    this.log(`configured for run ${req.run_id}: batch ${req.batch}, seed ${req.seed}, ${parameters} parameters, peer ${peerAddress}`);
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
    if (this.state === 'STEPPING') throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: step ${run.stepsDone} is running`);
    if (this.state === 'FAILED') throw new RpcError(grpc.status.FAILED_PRECONDITION, `the run failed earlier (${this.lastError}); configure again`);
    if (req.step !== run.stepsDone) throw new RpcError(grpc.status.FAILED_PRECONDITION, `step ${req.step} out of order: this worker is at step ${run.stepsDone}`);
    const S = this.o.spec.inputSize;
    const want = this.o.spec.inputChannels * run.batch * S * S;
    if (req.images.length !== want) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${req.images.length} image bytes, expected ${want} (uint8 [${this.o.spec.inputChannels}][${run.batch}][${S}][${S}])`);
    if (req.labels.length !== run.batch) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${req.labels.length} labels for a batch of ${run.batch}`);
    if (req.labels.some((l) => l >= this.o.spec.classes)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `a label is not below ${this.o.spec.classes} classes`);
    const hp = req.hyper;
    if (!hp || !(hp.lr >= 0)) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'a step needs SGD hyper-parameters');

    this.state = 'STEPPING';
    const abort = new AbortController();
    run.abort = abort;
    const onCancel = () => abort.abort(new RpcError(grpc.status.CANCELLED, `step ${req.step} cancelled by the coordinator`));
    call.on('cancelled', onCancel);
    try {
      const reply = await this.runStep(run, req, abort.signal);
      this.state = 'READY';
      return reply;
    } catch (e) {
      const err = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason : e;
      this.state = 'FAILED';
      this.lastError = `step ${req.step}: ${describeError(err)}`;
      run.mailbox.close(new Error(`the run failed at step ${req.step}`));
      this.log(`step ${req.step} failed: ${describeError(err)}`);
      if (err instanceof RpcError) throw err;
      throw new RpcError(isServiceError(err) ? err.code : grpc.status.INTERNAL, `tower ${this.tower}, step ${req.step}: ${describeError(err)}`);
    } finally {
      run.abort = null;
      call.removeListener('cancelled', onCancel);
    }
  });

  status = unaryHandler<unknown, StatusReply>(async () => {
    const run = this.run;
    return {
      model: this.identity,
      tower: this.tower,
      backend: this.device.mode,
      device: this.o.device ?? 0,
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
    };
  });

  getParameters = streamHandler<{ include_momentum: boolean }, ParameterTensor>(async (req, write) => {
    const run = this.run;
    if (!run) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: no parameters yet');
    if (this.state === 'STEPPING') throw new RpcError(grpc.status.FAILED_PRECONDITION, 'a step is running; ask between steps');
    const step = run.stepsDone;
    const params = await run.tower.syncParams();
    for (const l of towerParamLayers(this.o.spec, this.tower)) {
      const p = params.get(l.name)!;
      await write({ layer: l.name, kind: 'w', tensor: encodeTensor(l.shape, p.w), step });
      await write({ layer: l.name, kind: 'b', tensor: encodeTensor([l.shape[0]], p.b), step });
      if (req.include_momentum) {
        await write({ layer: l.name, kind: 'vw', tensor: encodeTensor(l.shape, p.vw), step });
        await write({ layer: l.name, kind: 'vb', tensor: encodeTensor([l.shape[0]], p.vb), step });
      }
    }
  });

  // ---------------------------------------------------------------- Peer service

  peerHello = unaryHandler<PeerHello, PeerHello>(async (req) => {
    const diffs = identityDifferences(req.model, this.identity, `tower ${req.tower}`, `tower ${this.tower}`);
    if (req.tower !== this.other) diffs.push(`both workers are tower ${this.tower}: start one with --tower 0 and the other with --tower 1`);
    if (diffs.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, diffs.join('; '));
    return { model: this.identity, tower: this.tower, run_id: this.run?.id ?? '' };
  });

  exchange = unaryHandler<ExchangeRequest, object>(async (req) => {
    const run = this.run;
    if (!run || req.run_id !== run.id) throw new RpcError(grpc.status.FAILED_PRECONDITION, `tower ${this.tower} is not configured for run ${req.run_id}`);
    if (this.state === 'FAILED') throw new RpcError(grpc.status.FAILED_PRECONDITION, `tower ${this.tower} failed: ${this.lastError}`);
    if (req.from_tower !== this.other) throw new RpcError(grpc.status.INVALID_ARGUMENT, `a tensor from tower ${req.from_tower} reached tower ${this.tower}`);
    if (req.step !== run.stepsDone) throw new RpcError(grpc.status.FAILED_PRECONDITION, `a tensor for step ${req.step} reached tower ${this.tower} at step ${run.stepsDone}`);
    if (!this.points.includes(req.point)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no crossing point ${req.point}`);
    if (req.direction !== 'FORWARD' && req.direction !== 'BACKWARD') throw new RpcError(grpc.status.INVALID_ARGUMENT, `direction ${req.direction}`);
    if (!this.receives(req.point, req.direction)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${this.tower} takes no ${req.direction.toLowerCase()} tensor at ${req.point}`);
    let x: Float32Array;
    try {
      x = decodeTensor(req.tensor, crossingShape(this.o.spec, req.point, run.batch));
    } catch (e) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `${req.point} ${req.direction.toLowerCase()}: ${(e as Error).message}`);
    }
    this.trafficOf(run, req.step).received(req.point, req.direction, req.tensor.data.byteLength);
    try {
      run.mailbox.put(mailKey(req.step, req.point, req.direction), x);
    } catch (e) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, (e as Error).message);
    }
    return {};
  });

  /** What tower t takes from its peer: everything but tower 0's fc7 (forward) and tower 1's d(fc7) slice sent by tower 1 (backward). */
  private receives(point: string, dir: Direction): boolean {
    if (point !== this.classifierPoint) return true;
    return dir === 'FORWARD' ? this.tower === 0 : this.tower === 1;
  }

  private trafficOf(run: Run, step: number): Traffic {
    let t = run.stepTraffic.get(step);
    if (!t) {
      t = new Traffic(this.points);
      run.stepTraffic.set(step, t);
    }
    return t;
  }

  // ---------------------------------------------------------------- the step

  private async runStep(run: Run, req: StepRequest, signal: AbortSignal): Promise<StepReply> {
    const t0 = performance.now();
    const t = this.tower;
    const tw = run.tower;
    const segs = this.segments;
    const last = segs.length - 1;
    const step = req.step;
    const ctx: StepContext = { seed: run.seed, step, train: true };
    const traffic = this.trafficOf(run, step);
    const timing = { exchange: 0 };

    /** Sends `send` (if any) and takes the peer's tensor (if `take`), both at once; the time is exchange time. */
    const cross = async (point: string, dir: Direction, send: Float32Array | null, take: boolean): Promise<Float32Array | null> => {
      signal.throwIfAborted();
      const ts = performance.now();
      const jobs: Promise<unknown>[] = [];
      let got: Float32Array | null = null;
      if (send) jobs.push(this.send(run, step, point, dir, send, signal, traffic));
      if (take) {
        jobs.push(
          run.mailbox
            .take(mailKey(step, point, dir), signal, this.exchangeTimeoutMs, () => `${point} ${dir.toLowerCase()} tensor of step ${step}`)
            .then((x) => {
              got = x;
            }),
        );
      }
      await Promise.all(jobs);
      timing.exchange += performance.now() - ts;
      return got;
    };

    // ---- forward
    const images = normaliseImages(req.images);
    let out = await tw.forwardSegment(0, images, ctx);
    for (let i = 1; i <= last; i++) {
      const point = segs[i]!.crossing!;
      if (segs[i]!.tower0Only) {
        // the classifier runs on tower 0 only: tower 1 sends its fc7, tower 0 sends nothing
        if (t === 1) await cross(point, 'FORWARD', out, false);
        else {
          const theirs = (await cross(point, 'FORWARD', null, true))!;
          await tw.forwardSegment(i, concatTowers(out, theirs), ctx);
        }
        break;
      }
      const theirs = (await cross(point, 'FORWARD', out, true))!;
      out = await tw.forwardSegment(i, t === 0 ? concatTowers(out, theirs) : concatTowers(theirs, out), ctx);
    }

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
    await tw.update({ lr: req.hyper.lr, momentum: req.hyper.momentum, weightDecay: req.hyper.weight_decay });
    const updateMs = performance.now() - tu;

    run.stepsDone = step + 1;
    run.stepTraffic.delete(step);
    run.mailbox.dropBefore(run.stepsDone);
    run.total.add(traffic);
    run.lastTraffic = traffic;
    const total = performance.now() - t0;
    run.lastTiming = { total_ms: total, compute_ms: total - timing.exchange - updateMs, exchange_ms: timing.exchange, update_ms: updateMs };
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

  /** Pushes one crossing tensor to the peer and waits for its acknowledgement. */
  private async send(run: Run, step: number, point: string, dir: Direction, x: Float32Array, signal: AbortSignal, traffic: Traffic): Promise<void> {
    const tensor = encodeTensor(crossingShape(this.o.spec, point, run.batch), x);
    const req: ExchangeRequest = { run_id: run.id, step, point, direction: dir, from_tower: this.tower, tensor };
    try {
      await unary<ExchangeRequest, object>(run.peer.client, 'Exchange', req, { timeoutMs: this.exchangeTimeoutMs, signal });
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      const code = isServiceError(e) ? e.code : grpc.status.INTERNAL;
      throw new RpcError(code === grpc.status.DEADLINE_EXCEEDED ? code : grpc.status.UNAVAILABLE, `tower ${this.tower} could not send ${point} (${dir.toLowerCase()}) of step ${step} to its peer at ${run.peer.address}: ${describeError(e)}`);
    }
    traffic.sent(point, dir, tensor.data.byteLength);
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
  const device = await Device.create(o.backend, o.fallback ?? { onFallback: 'throw' });
  const worker = new TowerWorker(o, device);
  const server = new grpc.Server(sizeLimitOptions(worker.limitBytes));
  const { Worker, Peer } = protocol();
  server.addService(Worker.service, {
    Handshake: worker.handshake,
    Configure: worker.configure,
    Step: worker.step,
    Status: worker.status,
    GetParameters: worker.getParameters,
  });
  server.addService(Peer.service, { Hello: worker.peerHello, Exchange: worker.exchange });
  const host = o.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(formatAddress({ host, port: o.port ?? 0 }), grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const address = formatAddress({ host, port });
  return {
    address,
    port,
    worker,
    close: () =>
      new Promise<void>((resolve) => {
        worker.shutdown();
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}
