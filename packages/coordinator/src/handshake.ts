/**
 * The coordinator's handshake with one worker: it introduces the run (model identity, tower, the peer's
 * address, run id) and checks the worker back (the same model, the tower asked for, a batch it accepts,
 * the features the run needs). Every refusal is a UserError that says what to change; a worker that never
 * answers is named with how long it was waited for and why it could not be reached.
 */
import * as grpc from '@grpc/grpc-js';
import {
  PROTOCOL_VERSION,
  describeError,
  describeWorkerDevice,
  identityDifferences,
  isServiceError,
  unreachableHint,
  certificateFailure,
  failFastOnCertificates,
  connectionFailure,
  tlsMismatch,
  type HandshakeReply,
  type ModelIdentity,
  type Security,
  type WorkerClient,
} from '@alexnet-mp/worker';
import { UserError } from './cli/errors.js';
import { unmetNeed, type RunNeeds } from './worker-features.js';
import type { MicroBatchChoice } from './micro-batches.js';
import { saidIfSlow } from './said-if-slow.js';
import { listening } from './listening.js';

export interface HandshakeContext {
  readonly tower: number;
  /** How messages name the worker ("worker 0 (tower 0) at host:port"). */
  readonly label: string;
  readonly identity: ModelIdentity;
  /** Both workers' addresses: the worker is told its peer's. */
  readonly workers: readonly [string, string];
  readonly runId: string;
  readonly takeOver: boolean;
  readonly security: Security | undefined;
  readonly batch: number;
  readonly needs: RunNeeds;
  /** The largest evaluation batch of the run, or null without evaluations. */
  readonly evalMaxBatch: number | null;
  readonly microBatches: MicroBatchChoice;
  readonly info: (line: string) => void;
  readonly timeoutMs: number;
  /** The option that set timeoutMs, for the messages (default --connect-timeout; a restart's is --wait-for-workers). */
  readonly timeoutOption?: string;
}

export async function handshakeWorker(c: WorkerClient, h: HandshakeContext): Promise<HandshakeReply> {
  const t = h.tower;
  const request = { model: h.identity, tower: t, peer_address: h.workers[1 - t]!, run_id: h.runId };
  let reply: HandshakeReply;
  const started = performance.now();
  // either side may have refused the other's certificate: said without a direction
  const certificatesRefused = (e: grpc.ServiceError) =>
    new UserError(`${h.label}: the TLS handshake with it failed on a certificate (${describeError(e)}): ${unreachableHint(e.details, h.security, h.workers[t])}`);
  try {
    // waiting for the worker to come up: a connection refused for its certificates is said at once
    reply = await failFastOnCertificates(c.handshake({ ...request, take_over: h.takeOver }, { timeoutMs: h.timeoutMs, waitForReady: true }), () => c.status({ timeoutMs: 1000 }));
  } catch (e) {
    if (isServiceError(e) && e.code === grpc.status.UNAVAILABLE && certificateFailure(e.details)) throw certificatesRefused(e);
    if (isServiceError(e) && e.code === grpc.status.FAILED_PRECONDITION) throw new UserError(`${h.label} refused the handshake: ${e.details}`);
    if (isServiceError(e) && e.code === grpc.status.UNAUTHENTICATED) throw new UserError(`${h.label} refused us: ${e.details}`);
    if (isServiceError(e) && e.code === grpc.status.UNIMPLEMENTED) {
      throw new UserError(`${h.workers[t]} does not serve alexnet.v1.Worker (${describeError(e)}): is it an alexnet worker speaking protocol version ${PROTOCOL_VERSION}?`);
    }
    if (isServiceError(e) && (e.code === grpc.status.DEADLINE_EXCEEDED || e.code === grpc.status.UNAVAILABLE)) {
      const waited = ((performance.now() - started) / 1000).toFixed(1);
      // waiting for the channel hides why it never connected: one quick call without waiting says (refused, TLS, ...)
      e = await connectionFailure(e, () => c.handshake(request, { timeoutMs: 1000 }));
      if (!isServiceError(e)) throw e;
      if (e.code === grpc.status.UNAVAILABLE && certificateFailure(e.details)) throw certificatesRefused(e);
      // something answered but not in TLS as asked (or in TLS where plain was): the worker runs, its --tls differs
      if (tlsMismatch(e.details)) {
        throw new UserError(`${h.label}: a server answers at ${h.workers[t]} but not as this coordinator connects (${describeError(e)}): ${h.security?.tls ? 'it was started without --tls: give both sides --tls, or neither' : 'it may have been started with --tls: give --tls here too'}`);
      }
      const within = `in ${waited} s (${h.timeoutOption ?? '--connect-timeout'} ${(h.timeoutMs / 1000).toFixed(0)}; ${describeError(e)})`;
      if (/Name resolution failed|ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(e.details)) throw new UserError(`no worker answered at ${h.workers[t]} ${within}: the host name does not resolve here; check the address in --workers`);
      if (/Protocol error|http2|PROTOCOL_ERROR|Received HTTP status/i.test(e.details)) throw new UserError(`a server answers at ${h.workers[t]} but not as an alexnet worker (${describeError(e)}): is the port in --workers another service's?`);
      // connected, never answered: a worker stopped (SIGSTOP, a debugger) or hung, or something that accepts and stays silent
      if (e.code === grpc.status.DEADLINE_EXCEEDED && (await listening(h.workers[t]!))) throw new UserError(`nothing answered at ${h.workers[t]} ${within}: a process there accepts connections but does not answer (a stopped or hung worker?); start the worker again, or check the address in --workers`);
      throw new UserError(`no worker answered at ${h.workers[t]} ${within}: start it with \`alexnet worker --tower ${t} --port ...\`; ${unreachableHint(e.details, h.security, h.workers[t])}`);
    }
    throw e;
  }
  // the worker checked us; check it back (an older worker might not compare everything)
  const diffs = identityDifferences(h.identity, reply.model, 'coordinator', 'worker');
  if (reply.tower !== t) diffs.push(`tower differs (expected tower ${t}, the worker is tower ${reply.tower})`);
  if (diffs.length > 0) throw new UserError(`${h.label} refused: ${diffs.join('; ')}`);
  if (h.batch > reply.max_batch) throw new UserError(`batch ${h.batch} is more than ${h.label} accepts (it was started with --max-batch ${reply.max_batch})`);
  const unmet = unmetNeed(reply.features, h.needs);
  if (unmet !== null) throw new UserError(`${h.label} ${unmet}`);
  h.microBatches.checkWorker(reply.features, h.label);
  if (h.evalMaxBatch !== null && h.evalMaxBatch > reply.max_batch) {
    throw new UserError(`evaluation batch ${h.evalMaxBatch} is more than ${h.label} accepts (it was started with --max-batch ${reply.max_batch})`);
  }
  h.info(`${h.label}: ${reply.model.preset} (${reply.model.model_hash.slice(0, 12)}), ${reply.backend}, ${describeWorkerDevice(reply)}, pid ${reply.pid} on ${reply.hostname}`);
  // this side sends a token the worker does not check: the run is not as protected as it looks from here
  if (h.security?.token && reply.authentication === 'none') {
    h.info(`warning: ${h.label} checks no token or certificate: anyone who reaches ${h.workers[t]} can drive it (start it with --token-file FILE, the same token as here, or --tls DIR)`);
  }
  return reply;
}

/**
 * The handshake with both workers at once (workers started by hand may come up later: after 2 s the wait is
 * said, with the option that bounds it); everything wrong with either is said at once, in one UserError.
 */
export async function handshakeBoth(clients: readonly [WorkerClient, WorkerClient], h: Omit<HandshakeContext, 'tower' | 'label'>, label: (t: number) => string, timeoutOption: string): Promise<[HandshakeReply, HandshakeReply]> {
  // the wait names only the workers still silent (one that answered is said already)
  const answered = [false, false];
  const hs = await saidIfSlow(
    Promise.allSettled(([0, 1] as const).map((t) => handshakeWorker(clients[t], { ...h, tower: t, label: label(t), timeoutOption }).finally(() => (answered[t] = true)))),
    () => {
      const silent = h.workers.filter((_, t) => !answered[t]);
      if (silent.length === 0) return;
      h.info(`waiting for the worker${silent.length === 1 ? '' : 's'} at ${silent.join(' and ')} to answer (up to ${(h.timeoutMs / 1000).toFixed(0)} s: ${timeoutOption})`);
    },
  );
  const refused = hs.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (refused.length > 0) {
    // anything but a UserError is a bug and keeps its stack
    const bug = refused.find((e) => !(e instanceof UserError));
    if (bug) throw bug;
    throw new UserError(refused.map((e) => (e as Error).message).join('\n  and '));
  }
  const replies = hs.map((r) => (r as PromiseFulfilledResult<HandshakeReply>).value) as [HandshakeReply, HandshakeReply];
  const [h0, h1] = replies;
  if (h0.backend !== h1.backend) h.info(`warning: the workers run different backends (${h0.backend}, ${h1.backend}); results may differ from the one-process run in the last bits`);
  return replies;
}
