/**
 * The crossings of a step or an evaluation: sending a tensor to the peer (Peer.Exchange, Peer.EvalExchange),
 * checking and filing the peer's tensors as they arrive, and waiting for the ones a pass needs.
 */
import { setImmediate as turnOfTheLoop } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { crossingShape, decodeTensor, encodeTensor, squeezeUnitSpatial, type Direction, type EvalExchangeRequest, type ExchangeRequest, type Tensor } from './protocol.js';
import { RpcError, describeError, isServiceError, unary } from './rpc.js';
import { Traffic, describePhase, mailKey, type Phase } from './exchange.js';
import { WHOLE, describeMicroBatch, phaseKey, type Crossings, type MicroBatch, type Run, type WorkerContext } from './run.js';
import { microBatchProblem } from '@alexnet-mp/core';
import { peerRequestSerializer } from './aligned-exchange.js';
import { crossingKey } from './crossing-trace.js';

/**
 * Checks a peer's tensor (point, direction, shape for `batch` images), counts it and leaves it in the mailbox.
 * `micro`: a step cut into micro-batches, the tensor being micro-batch `index` of `count` (of batch / count images).
 */
export function acceptCrossing(w: WorkerContext, run: Run, phase: Phase, point: string, dir: Direction, batch: number, tensor: Tensor, micro: MicroBatch = WHOLE): void {
  if (!w.points.includes(point)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no crossing point ${point}`);
  if (dir !== 'FORWARD' && dir !== 'BACKWARD') throw new RpcError(grpc.status.INVALID_ARGUMENT, `direction ${dir}`);
  if (!receives(w, point, dir)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${w.tower} takes no ${dir.toLowerCase()} tensor at ${point}`);
  const problem = microBatchProblem(batch, micro.count);
  if (problem !== null || !(Number.isInteger(micro.index) && micro.index >= 0 && micro.index < micro.count)) {
    throw new RpcError(grpc.status.INVALID_ARGUMENT, `${point} ${dir.toLowerCase()}: micro-batch ${micro.index} of ${micro.count}: ${problem ?? `give an index in 0..${micro.count - 1}`}`);
  }
  let x: Float32Array;
  const want = crossingShape(w.spec, point, batch / micro.count);
  // [C, N, 1, 1] is the same tensor as [C, N]; any other shape is refused as it came
  const squeezed = squeezeUnitSpatial(tensor.shape);
  const same = squeezed.length === want.length && squeezed.every((d, i) => d === want[i]);
  try {
    // read-only from here (joined or summed into new arrays, uploaded): a view of the received bytes when aligned
    x = decodeTensor(same ? { shape: want, data: tensor.data } : tensor, want, true);
  } catch (e) {
    throw new RpcError(grpc.status.INVALID_ARGUMENT, `${point} ${dir.toLowerCase()}: ${(e as Error).message}`);
  }
  trafficOf(w, run, phase).received(point, dir, tensor.data.byteLength);
  try {
    run.mailbox.put(mailKey(phase, point, dir, micro.index), x);
  } catch (e) {
    throw new RpcError(grpc.status.FAILED_PRECONDITION, (e as Error).message);
  }
  if (phase.kind === 'step') w.trace?.noteArrived(run.id, phase.n, crossingKey(point, dir, micro.index));
}

/** What tower t takes from its peer: everything but tower 0's fc7 (forward) and tower 1's d(fc7) slice sent by tower 1 (backward). */
export function receives(w: WorkerContext, point: string, dir: Direction): boolean {
  if (point !== w.classifierPoint) return true;
  return dir === 'FORWARD' ? w.tower === 0 : w.tower === 1;
}

export function trafficOf(w: WorkerContext, run: Run, phase: Phase): Traffic {
  const key = phaseKey(phase);
  let t = run.phaseTraffic.get(key);
  if (!t) {
    t = new Traffic(w.points);
    run.phaseTraffic.set(key, t);
  }
  return t;
}

/**
 * One turn of the event loop, for after starting an exchange: HTTP/2 hands the written tensor to the socket in
 * it (a kernel that runs on the main thread, as the CPU backends' do, would otherwise hold it until it ends).
 */
export const letTensorsLeave = (): Promise<void> => turnOfTheLoop();

/**
 * The exchanges of one step or evaluation of `batch` images: sending with Peer.Exchange (steps) or
 * Peer.EvalExchange (evaluations), taking from the mailbox under the phase's keys. An exchange is done when
 * the peer's tensor is here and this worker's is on its way (serialised: its array may change); the peer's
 * acknowledgements, a round trip behind, are waited for by `acked` at the end of the pass, and a refusal in
 * one fails every exchange waited for after it at once. Time accounting: the time the pass was blocked
 * waiting (exchangeMs), and the time during which at least one exchange was in flight while the pass was not
 * blocked, computing meanwhile (exchangeHiddenMs), counted once however many exchanges overlap (a step cut into
 * micro-batches keeps several in flight); the two add up to at most the pass's time.
 * A crossing that sends lets the event loop turn before it goes on (HTTP/2 writes the tensor in that turn,
 * not when the worker next waits: the peer may be waiting for it), and a wait that blocked until the peer's
 * tensor came turns it once more (the acknowledgement written on its arrival leaves before the compute).
 */
export function openCrossings(w: WorkerContext, run: Run, phase: Phase, batch: number, traffic: Traffic, signal: AbortSignal): Crossings {
  let blockedMs = 0;
  // exchanges in flight and waits under way; the hidden time is when the first is not 0 and the second is (a wait
  // may also go on for a turn of the event loop after its exchange settled: that is waited, not hidden).
  // `tick`, called before either changes, adds the span since the last change
  let inFlight = 0;
  let blocked = 0;
  let hiddenMs = 0;
  let lastChange = performance.now();
  const tick = () => {
    const now = performance.now();
    if (blocked === 0 && inFlight > 0) hiddenMs += now - lastChange;
    lastChange = now;
  };
  const what = describePhase(phase);
  /** Sends not yet known to be acknowledged, and the first of them that failed (all later waits fail with it). */
  const unacked: Promise<void>[] = [];
  let failNow: (e: unknown) => void = () => {};
  /** Exchanges whose peer tensor has not arrived yet: a wait for one blocks until a message comes. */
  const awaitingPeer = new WeakSet<Promise<unknown>>();
  /** --trace-crossings (steps only): each exchange's crossing, for the spans waited for it. */
  const trace = phase.kind === 'step' ? w.trace : null;
  const traced = new WeakMap<Promise<unknown>, string>();
  const failed = new Promise<never>((_, reject) => {
    failNow = reject;
  });
  failed.catch(() => {}); // raced against every exchange; rethrown there
  const start = (point: string, dir: Direction, send: Float32Array | null, take: boolean, micro: MicroBatch = WHOLE): Promise<Float32Array | null> => {
    signal.throwIfAborted();
    const jobs: Promise<unknown>[] = [];
    let got: Float32Array | null = null;
    const n = batch / micro.count;
    const part = describeMicroBatch(micro);
    let acked: Promise<void> = Promise.resolve();
    const tkey = trace ? crossingKey(point, dir, micro.index) : null;
    if (send) {
      if (tkey !== null) trace!.noteSent(run.id, phase.n, tkey);
      let onWritten: () => void = () => {};
      const written = new Promise<void>((resolve) => {
        onWritten = resolve;
      });
      const sent = sendCrossing(w, run, phase, batch, point, dir, send, signal, traffic, micro, onWritten);
      sent.catch(failNow);
      unacked.push(sent);
      acked = sent;
      jobs.push(Promise.race([written, sent]));
    }
    const key = mailKey(phase, point, dir, micro.index);
    const pending = take && !run.mailbox.has(key);
    if (take) {
      jobs.push(
        run.mailbox
          .take(key, signal, w.exchangeTimeoutMs, () => `${point} ${dir.toLowerCase()} tensor of ${what}${part}`)
          .then((x) => {
            // a step's tensors were checked on arrival; an evaluation's may arrive before its batch size is known here
            const want = crossingShape(w.spec, point, n).reduce((a, b) => a * b, 1);
            if (x.length !== want) throw new RpcError(grpc.status.FAILED_PRECONDITION, `the peer's ${point} tensor of ${what}${part} has ${x.length} floats, this worker expects ${want} (the two were sent different batches)`);
            got = x;
          }),
      );
    }
    const exchange = Promise.race([Promise.all(jobs).then(() => got), failed]);
    if (tkey !== null) traced.set(exchange, tkey);
    tick();
    inFlight++;
    const settled = () => {
      tick();
      inFlight--;
    };
    // in flight until the peer's tensor is here and this worker's acknowledged; a failure is rethrown where
    // the exchange is awaited, not left unhandled here
    Promise.all([exchange, acked]).then(settled, settled);
    if (pending) {
      awaitingPeer.add(exchange);
      const here = () => void awaitingPeer.delete(exchange);
      exchange.then(here, here);
    }
    return exchange;
  };
  /** Waits for an exchange started before, the time blocked counted (`label`: --trace-crossings' name of a wait for no one crossing). */
  const wait = async <T>(exchange: Promise<T>, label = 'sends'): Promise<T> => {
    const ts = performance.now();
    tick();
    blocked++;
    try {
      const peerPending = awaitingPeer.has(exchange);
      const x = await exchange;
      // the peer's tensor came while this worker waited: its acknowledgement, written on arrival, leaves now
      // rather than after the compute that follows (the peer waits for it at the end of the step)
      if (peerPending) await letTensorsLeave();
      return x;
    } finally {
      const te = performance.now();
      trace?.noteWaited(run.id, phase.n, traced.get(exchange) ?? label, ts, te);
      blockedMs += te - ts;
      tick();
      blocked--;
    }
  };
  const crossDuring = async (point: string, dir: Direction, send: Float32Array | null, take: boolean, work: () => Promise<void>): Promise<Float32Array | null> => {
    const exchange = start(point, dir, send, take);
    exchange.catch(() => {}); // awaited below, after `work`
    await letTensorsLeave();
    await work();
    return wait(exchange);
  };
  const cross = async (point: string, dir: Direction, send: Float32Array | null, take: boolean): Promise<Float32Array | null> => {
    const exchange = start(point, dir, send, take);
    if (send) {
      // the tensor leaves before this worker computes again, even when the peer's is already here
      exchange.catch(() => {}); // awaited below
      await letTensorsLeave();
    }
    return wait(exchange);
  };
  const begin = (point: string, dir: Direction, send: Float32Array | null, take: boolean, micro: MicroBatch): Promise<Float32Array | null> => {
    const exchange = start(point, dir, send, take, micro);
    exchange.catch(() => {}); // awaited by `wait`, later
    return exchange;
  };
  return {
    cross,
    crossDuring,
    begin,
    wait,
    acked: () => wait(Promise.all(unacked), 'acks').then(() => {}),
    get exchangeMs() {
      return blockedMs;
    },
    get exchangeHiddenMs() {
      tick();
      return hiddenMs;
    },
  };
}

/**
 * Pushes one crossing tensor of a step (Exchange) or an evaluation (EvalExchange) to the peer and waits for its
 * acknowledgement. `onWritten`: called once `x` is no longer read (on the stream, when its request is
 * serialised; a unary call, when it is acknowledged).
 */
export async function sendCrossing(
  w: WorkerContext,
  run: Run,
  phase: Phase,
  batch: number,
  point: string,
  dir: Direction,
  x: Float32Array,
  signal: AbortSignal,
  traffic: Traffic,
  micro: MicroBatch = WHOLE,
  onWritten: () => void = () => {},
): Promise<void> {
  const tensor = encodeTensor(crossingShape(w.spec, point, batch / micro.count), x);
  try {
    if (phase.kind === 'step') {
      const req: ExchangeRequest = { run_id: run.id, step: phase.n, point, direction: dir, from_tower: w.tower, tensor };
      // only a step cut into micro-batches says so: to an older peer a whole batch's tensor reads as ever
      if (micro.count > 1) Object.assign(req, { micro_batch: micro.index, micro_batches: micro.count });
      // on the run's stream when the peer has it (exchange-stream.ts), else one Exchange call; either way the
      // tensor is written where the peer reads it in place (aligned-exchange.ts)
      const streamed = run.peer.stream !== null && (await sentOnStream(w, run, req, signal, onWritten));
      if (!streamed) await unary<ExchangeRequest, object>(run.peer.client, 'Exchange', req, { timeoutMs: w.exchangeTimeoutMs, signal, serialize: peerRequestSerializer('Exchange') });
    } else {
      const req: EvalExchangeRequest = { run_id: run.id, evaluation: phase.n, point, from_tower: w.tower, batch, tensor };
      await unary<EvalExchangeRequest, object>(run.peer.client, 'EvalExchange', req, { timeoutMs: w.exchangeTimeoutMs, signal, serialize: peerRequestSerializer('EvalExchange') });
    }
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    const code = isServiceError(e) ? e.code : grpc.status.INTERNAL;
    const unimplemented = code === grpc.status.UNIMPLEMENTED ? ' (the peer is an older build without evaluation)' : '';
    const part = describeMicroBatch(micro);
    throw new RpcError(
      code === grpc.status.DEADLINE_EXCEEDED || code === grpc.status.UNIMPLEMENTED ? code : grpc.status.UNAVAILABLE,
      `tower ${w.tower} could not send ${point} (${dir.toLowerCase()}) of ${describePhase(phase)}${part} to its peer at ${run.peer.address}: ${describeError(e)}${unimplemented}`,
    );
  }
  onWritten();
  traffic.sent(point, dir, tensor.data.byteLength);
}

/**
 * Sends a step's tensor on the run's stream; false when the peer answers the stream UNIMPLEMENTED (it listed
 * "exchange-stream" but does not serve Peer.Stream, e.g. a proxy of an older build): nothing was taken, the
 * stream is given up for the run and the caller sends with Exchange.
 */
async function sentOnStream(w: WorkerContext, run: Run, req: ExchangeRequest, signal: AbortSignal, onWritten: () => void): Promise<boolean> {
  try {
    await run.peer.stream!.send(req, w.exchangeTimeoutMs, signal, onWritten);
    return true;
  } catch (e) {
    if (signal.aborted || !isServiceError(e) || e.code !== grpc.status.UNIMPLEMENTED) throw e;
    if (run.peer.stream) w.log(`the peer at ${run.peer.address} does not serve Peer.Stream (${describeError(e)}): sending one Exchange call a tensor`);
    run.peer.dropStream();
    return false;
  }
}
