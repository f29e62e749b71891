/** What a Coordinator is made with, where a run continues, and what a step reports. */
import { randomBytes } from 'node:crypto';
import type { LrSchedule, LrScheduleState, ModelSpec, SgdHyper, TowerParams } from '@alexnet-mp/core';
import type { CrossingTraffic, Security } from '@alexnet-mp/worker';
import type { BatchSource } from './batch-source.js';
import type { EvalSet } from './evaluation.js';
import type { DeadlineOptions } from './health.js';

export interface CoordinatorOptions {
  readonly spec: ModelSpec;
  /** Addresses of tower 0's and tower 1's workers, in that order. */
  readonly workers: readonly [string, string];
  readonly batch: number;
  readonly seed: number;
  readonly hyper: SgdHyper;
  readonly source: BatchSource;
  /**
   * Evaluation during `run`: over `set` every `every` steps (0: only at the end of each epoch), at the end of
   * each epoch (with `stepsPerEpoch`), and after the last step.
   */
  readonly eval?: { readonly every: number; readonly set: EvalSet };
  /** How often a held-out evaluation under way says how far it is through `info` (default EVAL_PROGRESS_MS). */
  readonly evalProgressMs?: number;
  /** Steps in one epoch (epoch e is steps e*stepsPerEpoch ..): where the schedule's epochs, the epoch-end evaluations and checkpoints fall. */
  readonly stepsPerEpoch?: number;
  /** The learning rate of each step by its epoch (default: hyper.lr throughout); a plateau schedule is told the top-1 error of each epoch-end evaluation. */
  readonly schedule?: LrSchedule;
  /**
   * Checkpoints during `run` into `dir` (core's writeCheckpointFile: atomic, the last `keep` kept): every
   * `every` steps (0: never by count), at the end of each epoch, and after the last step. `extra` is saved in the
   * run state with the hyper-parameters, the schedule's state and the data position.
   */
  readonly checkpoint?: {
    readonly dir: string;
    /** Every this many steps (0: none by steps). */
    readonly every: number;
    /** After the first step that ends this long (ms) after the last checkpoint or the run's start (0 or absent: none by time). */
    readonly everyMs?: number;
    readonly keep: number;
    readonly extra?: () => Record<string, unknown>;
  };
  /** A resumed run: both towers' parameters and momentum, and the steps done, set on the workers (SetParameters) after Configure. */
  readonly resume?: ResumePoint;
  /** Deadlines of Step and Evaluate calls (health.ts; default: 60 s or 10x the slowest so far, the first 10 min). */
  readonly deadlines?: DeadlineOptions;
  /** The largest batch `evaluate` will be given, when more than `batch` and `eval.set.maxBatch` (message size limits). */
  readonly evalBatch?: number;
  readonly runId?: string;
  /** How long to wait for a worker to answer the handshake (it may still be starting). */
  readonly connectTimeoutMs?: number;
  /** Take the workers even if another run holds them (HandshakeRequest.take_over). */
  readonly takeOver?: boolean;
  /** Pretend to speak another protocol version (tests of the refusal). */
  readonly protocolVersion?: number;
  /** Human-readable progress (stderr in the CLI). */
  readonly info?: (line: string) => void;
  /** Mutual TLS and/or the shared token the workers ask for (worker's auth.ts); none: plain gRPC. */
  readonly security?: Security;
  /** Every N steps (the N-th, 2N-th, ... of the run), the layers' norms after the update in the step's metrics (layer_norms); 0 or absent: never. */
  readonly normsEvery?: number;
    /** Micro-batches a step (--micro-batches): N >= 1 always N; 'auto' chosen from the measured exchange (micro-batches.ts); default 1. */
  readonly microBatches?: number | 'auto';
  /**
   * Queued steps (default true): when nothing is due between two steps, the next one is sent while the one
   * before runs and the workers start it the moment they end that one (workers listing "queued-steps"); false:
   * each step waits for the replies of the one before.
   */
  readonly queueSteps?: boolean;
}

/** Where a run continues: both towers' parameters and momentum, the steps done and the schedule's state. */
export interface ResumePoint {
  readonly params: readonly [TowerParams, TowerParams];
  readonly step: number;
  readonly schedule?: LrScheduleState;
  /** The evaluation due after this step was not done when the checkpoint was written (it is written first): `run` does it before its first step. */
  readonly evalDue?: boolean;
  /**
   * That evaluation was done after all (the run stopped after it: its log has it): `run` does not repeat it, and
   * its top-1 error feeds the learning-rate schedule at an epoch's end, as it did (the checkpoint's schedule state is from before it).
   */
  readonly evalLogged?: { readonly top1Error: number };
  /** The checkpoint file it was read from, and whether that checkpoint was written for the time alone (the next checkpoint replaces it). */
  readonly file?: string;
  readonly byTime?: boolean;
}

/** A worker failed or vanished during a run; the message names it. `lost`: it is gone or hung (health.ts), not refusing. */
export class WorkerFailure extends Error {
  constructor(message: string, readonly tower: number, readonly lost = false) {
    super(message);
    this.name = 'WorkerFailure';
  }
}

export interface WorkerStepMetrics {
  tower: number;
  total_ms: number;
  compute_ms: number;
  /** Blocked on the exchange (StepTiming.exchange_ms). */
  exchange_ms: number;
  update_ms: number;
  /** Exchange time hidden behind compute (StepTiming.exchange_hidden_ms; 0 from older workers). */
  exchange_hidden_ms: number;
  sent_bytes: number;
  received_bytes: number;
  messages_sent: number;
  messages_received: number;
  /** The worker process's resident memory after the step, MiB (StepReply.rss_bytes); absent from older workers. */
  rss_mib?: number;
}

export interface StepMetrics {
  event: 'step';
  step: number;
  /** The learning rate of this step (the schedule's for its epoch). */
  lr: number;
  loss: number;
  /** The training batch's top-1 and top-5 error: the share whose label is not the top class / not in the top 5 (as evaluation lines say; logs before 2026-12-04 had `top1`/`top5`, the accuracy). */
  top1_error: number;
  top5_error: number;
  batch: number;
  /** The micro-batches the step was cut into (1: the whole batch at once). */
  micro_batches: number;
  ms: number;
  images_per_s: number;
  /** Tensor bytes that crossed between the workers in this step (both directions). */
  crossing_bytes: number;
  workers: WorkerStepMetrics[];
  /** Per crossing point, as counted by each worker. */
  traffic: CrossingTraffic[][];
  /** Every --norms-every steps: each layer's L2 norms after the update, per tower (weights, the step's change of them, biases). */
  layer_norms?: LayerNormsRow[];
}

/** A layer's norms on one tower after a step (StepReply.layer_norms). */
export interface LayerNormsRow {
  tower: number;
  layer: string;
  weight: number;
  update: number;
  bias: number;
}

export const newRunId = () => `${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;

