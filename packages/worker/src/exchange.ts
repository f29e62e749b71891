/**
 * The receiving side of the crossing exchanges and their accounting.
 *
 * Tensors are pushed by the peer (Peer.Exchange) whenever it has them, which
 * may be before this worker needs them, or even before this worker has
 * received the Step (or Evaluate) call: the mailbox keeps them by
 * (phase, point, direction) until `take`, the phase being a training step
 * or an evaluation, numbered separately: their keys never collide.
 */
import type { CrossingTraffic, Direction } from './protocol.js';

/** What a crossing tensor belongs to: training step n (Peer.Exchange) or the run's n-th Evaluate call (Peer.EvalExchange). */
export interface Phase {
  readonly kind: 'step' | 'eval';
  readonly n: number;
}

export const stepPhase = (n: number): Phase => ({ kind: 'step', n });
export const evalPhase = (n: number): Phase => ({ kind: 'eval', n });

/** "step 3" or "evaluation 3", for messages. */
export const describePhase = (p: Phase) => `${p.kind === 'step' ? 'step' : 'evaluation'} ${p.n}`;

/** The mailbox key of a crossing tensor; `micro`: its micro-batch in a step cut into micro-batches (0: the first, or the whole batch). */
export const mailKey = (phase: Phase, point: string, dir: Direction, micro = 0) => `${phase.kind}/${phase.n}/${point}/${dir}/${micro}`;

export class Mailbox {
  private readonly arrived = new Map<string, Float32Array>();
  private readonly waiting = new Map<string, { resolve: (x: Float32Array) => void; reject: (e: Error) => void }>();
  private closed: Error | null = null;

  /** Delivers a tensor; a second one for the same key is an error (the sender repeated itself). */
  put(key: string, x: Float32Array): void {
    if (this.closed) throw this.closed;
    const w = this.waiting.get(key);
    if (w) {
      this.waiting.delete(key);
      w.resolve(x);
      return;
    }
    if (this.arrived.has(key)) throw new Error(`a second tensor for ${key}`);
    this.arrived.set(key, x);
  }

  /** Whether the tensor for `key` is here (take would give it at once). */
  has(key: string): boolean {
    return this.arrived.has(key);
  }

  /** The tensor for `key`, now or when it arrives; rejects when the signal aborts, on timeout, or when the mailbox closes. */
  take(key: string, signal: AbortSignal, timeoutMs: number, what: () => string): Promise<Float32Array> {
    if (this.closed) return Promise.reject(this.closed);
    const x = this.arrived.get(key);
    if (x) {
      this.arrived.delete(key);
      return Promise.resolve(x);
    }
    if (this.waiting.has(key)) return Promise.reject(new Error(`already waiting for ${key}`));
    return new Promise<Float32Array>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waiting.delete(key);
      };
      const onAbort = () => {
        done();
        reject(signal.reason instanceof Error ? signal.reason : new Error('step aborted'));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what()} from the peer within ${(timeoutMs / 1000).toFixed(0)} s`));
      }, timeoutMs);
      this.waiting.set(key, {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Drops what arrived for phases of the same kind before `phase` (steps before a step, evaluations before an evaluation). */
  dropBefore(phase: Phase): void {
    for (const k of [...this.arrived.keys()]) {
      const [kind, n] = k.split('/');
      if (kind === phase.kind && Number(n) < phase.n) this.arrived.delete(k);
    }
  }

  /** Rejects every waiter and refuses further tensors. */
  close(reason: Error): void {
    this.closed = reason;
    for (const w of [...this.waiting.values()]) w.reject(reason);
    this.waiting.clear();
    this.arrived.clear();
  }
}

/** Bytes and messages per crossing point, in model order. */
export class Traffic {
  private readonly byPoint = new Map<string, CrossingTraffic>();

  constructor(points: readonly string[]) {
    for (const point of points) {
      this.byPoint.set(point, { point, forward_sent_bytes: 0, forward_received_bytes: 0, backward_sent_bytes: 0, backward_received_bytes: 0, messages_sent: 0, messages_received: 0 });
    }
  }

  private get(point: string): CrossingTraffic {
    const e = this.byPoint.get(point);
    if (!e) throw new Error(`no crossing point ${point}`);
    return e;
  }

  sent(point: string, dir: Direction, bytes: number): void {
    const e = this.get(point);
    if (dir === 'FORWARD') e.forward_sent_bytes += bytes;
    else e.backward_sent_bytes += bytes;
    e.messages_sent++;
  }

  received(point: string, dir: Direction, bytes: number): void {
    const e = this.get(point);
    if (dir === 'FORWARD') e.forward_received_bytes += bytes;
    else e.backward_received_bytes += bytes;
    e.messages_received++;
  }

  add(other: Traffic): void {
    for (const o of other.byPoint.values()) {
      const e = this.get(o.point);
      e.forward_sent_bytes += o.forward_sent_bytes;
      e.forward_received_bytes += o.forward_received_bytes;
      e.backward_sent_bytes += o.backward_sent_bytes;
      e.backward_received_bytes += o.backward_received_bytes;
      e.messages_sent += o.messages_sent;
      e.messages_received += o.messages_received;
    }
  }

  list(): CrossingTraffic[] {
    return [...this.byPoint.values()].map((e) => ({ ...e }));
  }
}

/** Sum of sent and received bytes over all points. */
export function trafficTotals(list: readonly CrossingTraffic[]): { sent: number; received: number; messagesSent: number; messagesReceived: number } {
  let sent = 0;
  let received = 0;
  let messagesSent = 0;
  let messagesReceived = 0;
  for (const e of list) {
    sent += e.forward_sent_bytes + e.backward_sent_bytes;
    received += e.forward_received_bytes + e.backward_received_bytes;
    messagesSent += e.messages_sent;
    messagesReceived += e.messages_received;
  }
  return { sent, received, messagesSent, messagesReceived };
}
