/**
 * The Peer service of a worker: what the other worker calls. Hello (who it is, and the run id only to a peer
 * that knows it already), a step's crossing tensors by Exchange or on the Stream, an evaluation's by
 * EvalExchange; every tensor checked (crossings.ts) before it is filed for the step or evaluation that waits.
 */
import * as grpc from '@grpc/grpc-js';
import { identityDifferences, type EvalExchangeRequest, type ExchangeRequest, type ModelIdentity, type PeerHello } from './protocol.js';
import { RpcError, describeError, isServiceError, unary, unaryHandler } from './rpc.js';
import { evalPhase, stepPhase } from './exchange.js';
import { exchangeStreamHandler } from './exchange-stream.js';
import { acceptCrossing } from './crossings.js';
import type { PeerLink, Run, WorkerContext } from './run.js';
import { certificateFailure, connectionFailure, failFastOnCertificates, tlsMismatch, unreachableHint, type Security } from './auth.js';

/** What the Peer service needs of its worker. */
export interface PeerSide extends WorkerContext {
  readonly identity: ModelIdentity;
  /** What the worker serves of the additions within alexnet.v1. */
  readonly features: string[];
  /** A random id of this worker process (Peer.Hello's reply carries it). */
  readonly instance: string;
  /** false: the worker takes tensors by Exchange only (as older builds do). */
  readonly takesStream: boolean;
  /** Whether `runId` is the configured run. */
  knowsRun(runId: string): boolean;
  /** The configured run, if it takes tensors from `fromTower` for `runId`; else an RpcError saying why not. */
  acceptingRun(runId: string, fromTower: number): Run;
}

/** Configure's Hello to the peer: it must be the other tower of the same model; its features say how to send to it. */
export async function helloPeer(w: PeerSide & { readonly connectTimeoutMs: number }, peer: PeerLink, runId: string): Promise<void> {
  const hello = { model: w.identity, tower: w.tower, run_id: runId };
  // the same Hello without waiting for the channel: what the connection meets (a certificate refused, ...)
  const quick = () => unary<PeerHello, PeerHello>(peer.client, 'Hello', hello, { timeoutMs: 1000 });
  let reply: PeerHello;
  try {
    // waiting for the peer to come up: a connection refused for its certificates is said at once
    reply = await failFastOnCertificates(unary<PeerHello, PeerHello>(peer.client, 'Hello', hello, { timeoutMs: w.connectTimeoutMs, waitForReady: true }), quick);
  } catch (e) {
    throw peerUnreachable(peer.address, await connectionFailure(e, quick), peer.security);
  }
  const diffs = identityDifferences(w.identity, reply.model, `tower ${w.tower}`, `peer tower ${reply.tower}`);
  if (reply.tower !== w.other) diffs.push(`the peer at ${peer.address} is tower ${reply.tower}, not tower ${w.other}`);
  if (diffs.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, `peer at ${peer.address}: ${diffs.join('; ')}`);
  peer.useFeatures(reply.features ?? [], w.takesStream);
  peer.instance = reply.instance ?? '';
}

/**
 * Why the peer could not be greeted, in words: it refused us (another model or tower: FAILED_PRECONDITION; its
 * token or certificates: said as a refusal), the TLS handshake failed on a certificate, nothing listens there, a
 * server answers but not as this worker connects (TLS on one side only), or nothing answered in time.
 */
export function peerUnreachable(address: string, e: unknown, security: Security | undefined): RpcError {
  const why = describeError(e);
  if (!isServiceError(e)) return new RpcError(grpc.status.UNAVAILABLE, `peer at ${address} did not answer: ${why}`);
  if (e.code === grpc.status.FAILED_PRECONDITION) return new RpcError(grpc.status.FAILED_PRECONDITION, `peer at ${address} refused us: ${why}`);
  if (e.code === grpc.status.UNAUTHENTICATED || e.code === grpc.status.PERMISSION_DENIED) {
    return new RpcError(grpc.status.FAILED_PRECONDITION, `peer at ${address} refused us (${why}): give both workers the same --token-file (and the same certificates' CA)`);
  }
  if (e.code === grpc.status.UNAVAILABLE && certificateFailure(e.details)) {
    return new RpcError(grpc.status.FAILED_PRECONDITION, `the TLS handshake with the peer at ${address} failed on a certificate (${why}): ${unreachableHint(e.details, security, address)}`);
  }
  if (e.code === grpc.status.UNAVAILABLE && tlsMismatch(e.details)) {
    return new RpcError(grpc.status.FAILED_PRECONDITION, `a server answers at ${address} but not as this worker connects (${why}): ${security?.tls ? 'it was started without --tls: give both workers --tls, or neither' : 'it may have been started with --tls: give this worker --tls too'}`);
  }
  // the prefix "peer at ADDRESS did not answer" is what coordinators read as a peer not reached (configure.ts)
  if (e.code === grpc.status.UNAVAILABLE && /ECONNREFUSED/.test(e.details)) return new RpcError(grpc.status.UNAVAILABLE, `peer at ${address} did not answer: nothing listens there (${why})`);
  return new RpcError(grpc.status.UNAVAILABLE, `peer at ${address} did not answer: ${why}`);
}

/** The Peer service's handlers (server.ts registers them). */
export function peerService(w: PeerSide) {
  /** Checks a step's tensor from the peer and files it (Exchange, and each message of Stream). */
  const acceptStepTensor = (req: ExchangeRequest): void => {
    const run = w.acceptingRun(req.run_id, req.from_tower);
    // the step after this worker's current one too: with steps queued, the peer may start it first
    if (req.step !== run.stepsDone && req.step !== run.stepsDone + 1) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `a tensor for step ${req.step} reached tower ${w.tower} at step ${run.stepsDone} (it takes steps ${run.stepsDone} and ${run.stepsDone + 1})`);
    }
    // 0 from an older sender: the whole batch
    const micro = { index: req.micro_batch ?? 0, count: req.micro_batches || 1 };
    acceptCrossing(w, run, stepPhase(req.step), req.point, req.direction, run.batch, req.tensor, micro);
  };
  return {
    Hello: unaryHandler<PeerHello, PeerHello>(async (req) => {
      if (!req.model) throw new RpcError(grpc.status.INVALID_ARGUMENT, "Peer.Hello without the caller's model (a worker of this program sends its preset, model hash and protocol version)");
      const diffs = identityDifferences(req.model, w.identity, `tower ${req.tower}`, `tower ${w.tower}`);
      if (req.tower !== w.other) diffs.push(`a worker of tower ${req.tower} said hello to this worker, of tower ${w.tower}: its --peer points at this worker's address (give each worker the other's), or both workers are tower ${w.tower} (start one with --tower 0 and the other with --tower 1)`);
      if (diffs.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, diffs.join('; '));
      // the run id is what Exchange asks for: echoed only to a peer that knows it already
      return { model: w.identity, tower: w.tower, run_id: w.knowsRun(req.run_id) ? req.run_id : '', features: w.features, instance: w.instance };
    }),
    Exchange: unaryHandler<ExchangeRequest, object>(async (req) => {
      acceptStepTensor(req);
      return {};
    }),
    Stream: exchangeStreamHandler(
      (req) => acceptStepTensor(req),
      () => (w.takesStream ? null : new RpcError(grpc.status.UNIMPLEMENTED, 'this worker takes crossing tensors by Peer.Exchange only')),
    ),
    EvalExchange: unaryHandler<EvalExchangeRequest, object>(async (req) => {
      const run = w.acceptingRun(req.run_id, req.from_tower);
      if (req.evaluation !== run.evaluationsDone) {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `a tensor for evaluation ${req.evaluation} reached tower ${w.tower} at evaluation ${run.evaluationsDone}`);
      }
      if (!Number.isInteger(req.batch) || req.batch < 1 || req.batch > w.maxBatch) throw new RpcError(grpc.status.INVALID_ARGUMENT, `evaluation batch ${req.batch} is outside 1..${w.maxBatch}`);
      acceptCrossing(w, run, evalPhase(req.evaluation), req.point, 'FORWARD', req.batch, req.tensor);
      return {};
    }),
  };
}
