/**
 * What the worker's step, exchange and evaluation modules share: the worker's fixed facts (WorkerContext)
 * and one configured run's state (Run).
 */
import * as grpc from '@grpc/grpc-js';
import type { Device, ModelSpec, Segment, Tower, TowerIndex, TowerTap } from '@alexnet-mp/core';
import { protocol, type Direction, type StepTiming } from './protocol.js';
import { Mailbox, Traffic, type Phase } from './exchange.js';
import { clientChannelOptions } from './channel-options.js';
import { ExchangeStream } from './exchange-stream.js';
import { secureClient, type Security } from './auth.js';
import type { InputNormalisation } from './images.js';
import { RpcError } from './rpc.js';
import type { CrossingTrace } from './crossing-trace.js';

/** The worker's fixed facts, as its step, exchange and evaluation code reads them. */
export interface WorkerContext {
  readonly spec: ModelSpec;
  readonly tower: TowerIndex;
  /** The peer's tower. */
  readonly other: TowerIndex;
  readonly segments: readonly Segment[];
  /** The crossing points, in forward order. */
  readonly points: readonly string[];
  /** The crossing point at which only tower 1 sends forward and only tower 0 sends back (fc7, into the classifier). */
  readonly classifierPoint: string | null;
  readonly device: Device;
  readonly exchangeTimeoutMs: number;
  readonly maxBatch: number;
  readonly log: (line: string) => void;
  /** `--trace-crossings`: each step's crossings timed to a file; null: not traced. */
  readonly trace: CrossingTrace | null;
}

/**
 * A run id with its random part hidden ("20261204T120000Z-…"): what strangers may read (Status, refusals). An id
 * of another form (--run-id NAME) keeps its first third, at most 8 characters ("cifa…" for cifar-baseline), so
 * that runs can be told apart without giving the id away.
 */
export function redactRunId(id: string): string {
  const m = /^(\d{8}T\d{6}Z)-/.exec(id);
  if (m) return `${m[1]}-…`;
  return id === '' ? '' : `${id.slice(0, Math.min(8, Math.floor(id.length / 3)))}…`;
}

/** The refusal of a request naming run `runId` where `run` is configured (the configured one's id hidden). */
export function notTheConfiguredRun(runId: string, run: Pick<Run, 'id'>): RpcError {
  return new RpcError(grpc.status.FAILED_PRECONDITION, `run ${runId.slice(0, 128)} is not the configured run ${redactRunId(run.id)}`);
}

export interface Run {
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
  /** When a call of this run last reached the worker (performance.now(): a monotonic clock, which a change of the wall clock does not move): the lease runs from it. */
  lastCall: number;
  /** The coordinator ended the run (Release): its lease is over. */
  released: boolean;
  /** The connection of the run's last call ("HOST:PORT"): once it closes, the lease is over. */
  holder: string | undefined;
}

/**
 * A call of `run` reached the worker: its lease runs again from now (a released run takes it back); `from`, the
 * caller's connection (`call.getPeer()`), holds it while it stays open.
 */
export function touch(run: Run, from?: string): void {
  run.lastCall = performance.now();
  run.released = false;
  if (from !== undefined) run.holder = from;
}

/** The crossing exchanges of one step or evaluation, and the time spent blocked on them. */
export interface Crossings {
  /** Sends `send` (if any) and takes the peer's tensor (if `take`), both at once. */
  cross(point: string, dir: Direction, send: Float32Array | null, take: boolean): Promise<Float32Array | null>;
  /**
   * cross() with work in between: starts the exchange, runs `work` (which must not need the peer's tensor)
   * while the tensors are on the wire, then waits for the exchange. The exchange time until `work` ended
   * counts as hidden (exchangeHiddenMs), the time waited after it as blocked (exchangeMs).
   */
  crossDuring(point: string, dir: Direction, send: Float32Array | null, take: boolean, work: () => Promise<void>): Promise<Float32Array | null>;
  /**
   * Starts an exchange of one micro-batch's tensor (a step cut into micro-batches: pipeline.ts) and returns
   * at once; the pass goes on computing and `wait`s for it when it needs the peer's tensor.
   */
  begin(point: string, dir: Direction, send: Float32Array | null, take: boolean, micro: MicroBatch): Promise<Float32Array | null>;
  /** Waits for an exchange `begin` started, the time blocked counted as exchangeMs. */
  wait<T>(exchange: Promise<T>): Promise<T>;
  /**
   * Waits for the peer's acknowledgement of every tensor sent so far (an exchange is done once this worker's
   * tensor is on its way); rejects with the first refusal or failure. Called at the end of a pass.
   */
  acked(): Promise<void>;
  /** Time blocked on the exchanges. */
  readonly exchangeMs: number;
  /** Time with an exchange in flight while the worker computed instead (crossDuring, begin). */
  readonly exchangeHiddenMs: number;
}

/** Micro-batch `index` (0-based) of the `count` a step is cut into (pipeline.ts). */
export interface MicroBatch {
  readonly index: number;
  readonly count: number;
}

/** The whole batch at once: a step not cut into micro-batches, and every evaluation. */
export const WHOLE: MicroBatch = { index: 0, count: 1 };

/** " (micro-batch i of N)" for messages about a tensor of a step cut into micro-batches; "" for the whole batch. */
export const describeMicroBatch = (m: MicroBatch): string => (m.count > 1 ? ` (micro-batch ${m.index} of ${m.count})` : '');

/** The client side of the other worker's Peer service. */
export class PeerLink {
  readonly client: grpc.Client;
  /**
   * The stream a step's tensors go out on (Peer.Stream), once the peer's Hello listed "exchange-stream" and this
   * worker uses it; null: one Exchange call a tensor (an older peer).
   */
  stream: ExchangeStream | null = null;
  /** The peer's features, from its Hello reply (empty from an older worker). */
  features: readonly string[] = [];
  /** The peer's instance, from its Hello reply ("" from an older worker). */
  instance = '';
  constructor(readonly address: string, limitBytes: number, readonly security: Security | undefined) {
    this.client = secureClient(protocol().Peer, address, security, clientChannelOptions(limitBytes));
  }
  /** The peer's features, from its Hello reply: streams the step tensors when both ends can. */
  useFeatures(features: readonly string[], streamHere: boolean): void {
    this.features = features;
    this.stream = streamHere && features.includes('exchange-stream') ? new ExchangeStream(this.client) : null;
  }
  /** Gives up the stream for the run (the peer does not serve it after all): Exchange calls from now on. */
  dropStream(): void {
    this.stream?.close();
    this.stream = null;
  }
  close(): void {
    this.stream?.close();
    this.client.close();
  }
}

export const phaseKey = (p: Phase) => `${p.kind}/${p.n}`;

/** Inspection: read one layer's output in segment `segment` and stop the forward pass there. */
export interface SegmentTap {
  readonly segment: number;
  readonly tap: TowerTap;
}

export const zeroTiming = (): StepTiming => ({ total_ms: 0, compute_ms: 0, exchange_ms: 0, update_ms: 0, exchange_hidden_ms: 0 });

/** A newly configured run: nothing done, no traffic, its lease held by the caller's connection `holder`. */
export function newRun(points: readonly string[], r: Pick<Run, 'id' | 'batch' | 'seed' | 'tower' | 'peer' | 'input'> & { readonly holder: string }): Run {
  return {
    ...r,
    mailbox: new Mailbox(),
    stepsDone: 0,
    evaluationsDone: 0,
    phaseTraffic: new Map(),
    total: new Traffic(points),
    evalTotal: new Traffic(points),
    lastTraffic: new Traffic(points),
    lastTiming: zeroTiming(),
    evalTowers: new Map(),
    abort: null,
    lastCall: performance.now(),
    released: false,
  };
}
