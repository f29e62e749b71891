/** What a worker is started with, and the defaults of what is left out. */
import type { DeviceLoss, FallbackPolicy, ModelSpec, RequestedBackend, TowerIndex } from '@alexnet-mp/core';
import type { Security } from './auth.js';
import type { ConnectionLimits } from './connection-limits.js';

export interface WorkerOptions {
  readonly spec: ModelSpec;
  readonly tower: TowerIndex;
  readonly backend: RequestedBackend;
  /** `--device N`: Dawn's N-th WebGPU adapter (webgpu, auto); absent: the first GPU. webasm and cpu ignore it. */
  readonly device?: number;
  /** `--threads N`: webasm and cpu, the threads each kernel runs on (Device's AdapterChoice.threads); absent: one per core. */
  readonly threads?: number;
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
  /** How long a run keeps this worker after its last call (another run's Handshake is refused meanwhile); default 60 s. */
  readonly leaseMs?: number;
  /** How long Configure waits for the peer to answer its Hello (it may still be starting); default 30 s. */
  readonly connectTimeoutMs?: number;
  /** Bounds on open, silent and idle connections (connection-limits.ts); default DEFAULT_CONNECTION_LIMITS. */
  readonly connectionLimits?: ConnectionLimits;
  /**
   * false: behave as a worker without Peer.Stream (older builds): "exchange-stream" is not listed, a peer's
   * Stream call is answered UNIMPLEMENTED and this worker sends one Exchange call a tensor. Default true.
   */
  readonly exchangeStream?: boolean;
  /**
   * webgpu: called when the GPU device is lost, before the run is dropped (the worker command exits with
   * DEVICE_LOST_EXIT_CODE here); without it the worker stays up, FAILED, and refuses Configure.
   */
  readonly onDeviceLost?: (loss: DeviceLoss) => void;
  /** `--trace-crossings FILE`: each step's crossing timeline, one JSON line a step (crossing-trace.ts). */
  readonly traceCrossings?: string;
}

/** The worker command's exit code when its GPU device is lost (EX_TEMPFAIL: starting it again may work). */
export const DEVICE_LOST_EXIT_CODE = 75;

export const DEFAULT_MAX_BATCH = 256;
export const DEFAULT_EXCHANGE_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
export const DEFAULT_LEASE_MS = 60_000;
