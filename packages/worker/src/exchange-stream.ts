/**
 * The sending side of Peer.Stream: a run's step tensors on one long-lived bidirectional stream to the peer,
 * opened at the first send and kept for the run. Every ExchangeRequest is answered, in order, by one
 * ExchangeAck; a send resolves when its ack says the peer took the tensor and rejects with the peer's
 * reason otherwise (as a grpc.ServiceError, like a failed Exchange call). Writes respect HTTP/2 flow control
 * (after a write that fills the buffer, the next waits for 'drain'). A send can also say when its tensor has
 * been serialised and handed to HTTP/2 (`onWritten`): from then on its array may change, a round trip before
 * the ack comes. When the stream fails, every send in flight fails with the stream's error, and the next send
 * opens a new one.
 */
import * as grpc from '@grpc/grpc-js';
import { protocol, type ExchangeAck, type ExchangeRequest } from './protocol.js';
import { isServiceError, toStatus } from './rpc.js';
import { peerRequestSerializer } from './aligned-exchange.js';

/** An error as a unary call would have failed with (code and details), so that a send's failure reads the same either way. */
function peerError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
}

interface Pending {
  readonly req: ExchangeRequest;
  resolve(): void;
  reject(e: Error): void;
}

export class ExchangeStream {
  private call: grpc.ClientDuplexStream<ExchangeRequest, ExchangeAck> | null = null;
  /** Sends written (or being written) and not yet acknowledged, oldest first: acks come in this order. */
  private readonly pending: Pending[] = [];
  /** The stream's buffer is full (HTTP/2 flow control): writes wait in `queue`, in order, for 'drain'. */
  private blocked = false;
  private queue: { req: ExchangeRequest; onWritten?: () => void }[] = [];
  /** Streams opened so far (a test reads it: one a run unless a stream failed). */
  opened = 0;

  /**
   * `alignTensors: false` writes requests with the stock serialiser, whose tensors the receiver mostly has to copy
   * (bench/stream-latency.ts --unaligned compares the two).
   */
  constructor(
    private readonly client: grpc.Client,
    private readonly options: { alignTensors?: boolean } = {},
  ) {}

  private open(): grpc.ClientDuplexStream<ExchangeRequest, ExchangeAck> {
    // Peer.Stream, its requests written so that the receiver reads each tensor in place (aligned-exchange.ts)
    const m = protocol().Peer.service['Stream']!;
    const serialize = this.options.alignTensors === false ? (m.requestSerialize as (req: ExchangeRequest) => Buffer) : peerRequestSerializer<ExchangeRequest>('Stream');
    const call = this.client.makeBidiStreamRequest<ExchangeRequest, ExchangeAck>(m.path, serialize, m.responseDeserialize as (b: Buffer) => ExchangeAck, new grpc.Metadata(), {});
    this.opened++;
    call.on('data', (ack: ExchangeAck) => {
      const p = this.pending.shift();
      if (!p) {
        this.fail(call, peerError(grpc.status.INTERNAL, 'the peer acknowledged a tensor that was not sent'));
        return;
      }
      if (ack.point !== p.req.point || ack.step !== p.req.step || ack.direction !== p.req.direction || (ack.micro_batch ?? 0) !== (p.req.micro_batch ?? 0)) {
        this.fail(call, peerError(grpc.status.INTERNAL, `the peer acknowledged ${ack.point} (${ack.direction.toLowerCase()}) of step ${ack.step} where ${p.req.point} of step ${p.req.step} was next`));
        p.reject(peerError(grpc.status.INTERNAL, 'out-of-order acknowledgement on the exchange stream'));
        return;
      }
      if (ack.code === grpc.status.OK) p.resolve();
      else p.reject(peerError(ack.code, ack.message));
    });
    call.on('error', (e: Error) => this.fail(call, e));
    call.on('end', () => this.fail(call, peerError(grpc.status.UNAVAILABLE, 'the peer closed the exchange stream')));
    return call;
  }

  /** The stream `call` ended: every send in flight on it fails with `e`; the next send opens a new stream. */
  private fail(call: grpc.ClientDuplexStream<ExchangeRequest, ExchangeAck>, e: Error): void {
    if (this.call !== call) return;
    this.call = null;
    // writes waiting for this stream's 'drain' are given up with it
    this.blocked = false;
    this.queue = [];
    const err = isServiceError(e) ? peerError(e.code, `the exchange stream failed: ${e.details}`) : e;
    for (const p of this.pending.splice(0)) p.reject(err);
    call.removeAllListeners('data');
    call.on('error', () => {}); // a late error of a stream already given up
    call.cancel();
  }

  /**
   * Sends `req` and resolves once the peer took it; rejects with the peer's reason (its code and message),
   * the stream's failure, DEADLINE_EXCEEDED after `timeoutMs`, or `signal`'s reason. `onWritten` is called
   * once the request is serialised (its tensor's bytes copied out), unless the stream fails first.
   */
  send(req: ExchangeRequest, timeoutMs: number, signal: AbortSignal, onWritten?: () => void): Promise<void> {
    signal.throwIfAborted();
    const call = (this.call ??= this.open());
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const p: Pending = {
        req,
        resolve: () => {
          done();
          resolve();
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      // a send given up (deadline, abort) leaves the stream in an unknown state: it is closed, the others fail too
      const giveUp = (e: Error) => {
        p.reject(e);
        this.fail(call, e);
      };
      const onAbort = () => giveUp(signal.reason instanceof Error ? signal.reason : peerError(grpc.status.CANCELLED, 'cancelled'));
      timer = setTimeout(() => giveUp(peerError(grpc.status.DEADLINE_EXCEEDED, `no acknowledgement within ${(timeoutMs / 1000).toFixed(0)} s`)), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.push(p);
      this.write(call, req, onWritten);
    });
  }

  /**
   * Writes now unless earlier writes wait for 'drain', then after them; `onWritten` once grpc-js has serialised
   * the request and passed it on (a write behind another one still in progress waits, unserialised, in the stream).
   */
  private write(call: grpc.ClientDuplexStream<ExchangeRequest, ExchangeAck>, req: ExchangeRequest, onWritten?: () => void): void {
    if (this.call !== call) return;
    if (this.blocked) {
      this.queue.push({ req, onWritten });
      return;
    }
    // the callback runs once grpc-js serialised the request and passed it on; false: the stream's buffer is
    // full (HTTP/2 flow control), the next write waits for 'drain'
    // (a write that fails, on a stream that broke, calls back with the error: the send's ack fails instead)
    if (!call.write(req, (e?: Error | null) => e || onWritten?.())) {
      this.blocked = true;
      call.once('drain', () => {
        if (this.call !== call) return;
        this.blocked = false;
        const waiting = this.queue;
        this.queue = [];
        for (const w of waiting) this.write(call, w.req, w.onWritten);
      });
    }
  }

  close(): void {
    if (this.call) this.fail(this.call, peerError(grpc.status.CANCELLED, 'the run ended'));
  }
}

/**
 * Peer.Stream's handler: each ExchangeRequest goes to `accept` (the checks and filing of Exchange; throwing
 * refuses the tensor) and is answered by an ExchangeAck with the outcome, in order; the stream stays open.
 * While an ack cannot be written (the caller does not read), no more requests are read. `refuse` (an older
 * worker's behaviour, or a worker told not to stream) ends the call at once with its status instead.
 */
export function exchangeStreamHandler(accept: (req: ExchangeRequest) => void, refuse: () => Error | null): grpc.handleBidiStreamingCall<ExchangeRequest, ExchangeAck> {
  return (call) => {
    const no = refuse();
    if (no) {
      call.emit('error', toStatus(no));
      return;
    }
    call.on('data', (req: ExchangeRequest) => {
      let code = grpc.status.OK as number;
      let message = '';
      try {
        accept(req);
      } catch (e) {
        const st = toStatus(e);
        code = st.code ?? grpc.status.INTERNAL;
        message = st.details ?? '';
      }
      const ack: ExchangeAck = { step: req.step, point: req.point, direction: req.direction, code, message, micro_batch: req.micro_batch ?? 0 };
      if (!call.write(ack)) {
        call.pause();
        call.once('drain', () => call.resume());
      }
    });
    call.on('end', () => call.end());
    call.on('error', () => {}); // the caller went away: nothing is waiting on this side
  };
}
