/**
 * A step's crossings (crossings.ts) against a peer whose acknowledgements the test holds back: an exchange is
 * done once the peer's tensor is here and this worker's is serialised, a round trip before its ack; `acked`
 * waits for the acks (and only then counts the bytes sent); a tensor the peer refuses fails the next wait at
 * once, not after the exchange timeout.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { getPreset, segmentModel } from '@alexnet-mp/core';
import { openCrossings } from '../src/crossings.js';
import { Mailbox, Traffic, mailKey, stepPhase } from '../src/exchange.js';
import { PeerLink, type Run, type WorkerContext } from '../src/run.js';
import { crossingShape, type ExchangeAck, type ExchangeRequest } from '../src/protocol.js';
import { streamPeer } from './stream-peer.js';
import { flowControlOptions } from '../src/flow-control.js';

const spec = getPreset('tiny');
const BATCH = 4;
const segments = segmentModel(spec);
const points = segments.filter((s) => s.crossing !== null).map((s) => s.crossing!);
const POINT = points[0]!;
const floats = crossingShape(spec, POINT, BATCH).reduce((a, b) => a * b, 1);

/** A Peer.Stream server that answers each tensor only when the test calls `release(code)`. */
async function holdingPeer(t: import('ava').ExecutionContext) {
  const held: ExchangeRequest[] = [];
  let call: grpc.ServerDuplexStream<ExchangeRequest, ExchangeAck> | null = null;
  let arrived: () => void = () => {};
  const port = await streamPeer(
    t,
    (c) => {
      call = c;
      c.on('data', (r: ExchangeRequest) => {
        held.push(r);
        arrived();
      });
    },
    flowControlOptions,
  );
  const peer = new PeerLink(`127.0.0.1:${port}`, 64 << 20, undefined);
  peer.useFeatures(['exchange-stream'], true);
  t.teardown(() => peer.close());
  return {
    peer,
    /** Resolves once `n` tensors arrived. */
    arrivedCount: (n: number) =>
      new Promise<void>((resolve) => {
        arrived = () => held.length >= n && resolve();
        arrived();
      }),
    /** The bytes of the i-th tensor held. */
    heldTensor: (i: number) => held[i]!.tensor.data,
    release(code: grpc.status = grpc.status.OK, message = '') {
      const r = held.shift()!;
      call!.write({ step: r.step, point: r.point, direction: r.direction, code, message });
    },
  };
}

function context(peer: PeerLink, exchangeTimeoutMs: number): { w: WorkerContext; run: Run } {
  const w = { spec, tower: 0, other: 1, segments, points, classifierPoint: points[points.length - 1]!, exchangeTimeoutMs, maxBatch: 16, log: () => {} } as unknown as WorkerContext;
  const run = { id: 'run', batch: BATCH, peer, mailbox: new Mailbox(), phaseTraffic: new Map<string, Traffic>() } as unknown as Run;
  return { w, run };
}

/** Whether `p` has settled after the event loop ran a few turns. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return done;
}

/** Step 0's crossings of a worker whose peer holds back its acks (holdingPeer). */
async function crossingsWithPeer(t: import('ava').ExecutionContext) {
  const h = await holdingPeer(t);
  const { w, run } = context(h.peer, 60_000);
  const phase = stepPhase(0);
  const traffic = new Traffic(points);
  const x = openCrossings(w, run, phase, BATCH, traffic, new AbortController().signal);
  /** Sends a first tensor (nothing to take: done once serialised) and waits until the peer has it. */
  const sendFirst = async () => {
    await x.cross(POINT, 'FORWARD', new Float32Array(floats), false);
    await h.arrivedCount(1);
  };
  return { h, run, phase, traffic, x, sendFirst };
}

test("an exchange is done before the peer's ack; acked() waits for it, and the bytes count once acknowledged", async (t) => {
  const { h, run, phase, traffic, x } = await crossingsWithPeer(t);
  const theirs = new Float32Array(floats).fill(7);
  run.mailbox.put(mailKey(phase, POINT, 'FORWARD'), theirs);
  const mine = new Float32Array(floats).fill(1);
  const got = await x.cross(POINT, 'FORWARD', mine, true);
  t.is(got, theirs, "the peer's tensor, with this worker's still unacknowledged");
  // once the exchange is done the array is this worker's again: what went out is a copy
  mine.fill(9);
  await h.arrivedCount(1);
  t.deepEqual(new Set(new Float32Array(Uint8Array.from(h.heldTensor(0)).buffer)), new Set([1]));
  const acked = x.acked();
  t.false(await settled(acked), 'acked() waits for the ack');
  t.is(traffic.list().find((e) => e.point === POINT)!.forward_sent_bytes, 0);
  h.release();
  await acked;
  t.is(traffic.list().find((e) => e.point === POINT)!.forward_sent_bytes, floats * 4);
});

test('a tensor the peer refuses fails the next wait at once, with its reason', async (t) => {
  const { h, x, sendFirst } = await crossingsWithPeer(t);
  await sendFirst();
  // a tensor that will never come: without the refusal this would wait for the 60 s exchange timeout
  const next = x.cross(points[1]!, 'FORWARD', null, true);
  h.release(grpc.status.INVALID_ARGUMENT, 'not this one');
  const e = await t.throwsAsync(next);
  t.regex(e!.message, /could not send .* not this one/);
  await t.throwsAsync(x.acked(), { message: /not this one/ });
});

/** Resolves `p` and says whether the event loop ran a turn (a setImmediate queued first) before it settled. */
async function turnBefore<T>(p: () => Promise<T>): Promise<{ value: T; turned: boolean }> {
  let turned = false;
  setImmediate(() => (turned = true));
  const value = await p();
  return { value, turned };
}

test("a crossing lets the event loop turn after sending, even when the peer's tensor is already here (HTTP/2 writes in that turn)", async (t) => {
  const { h, run, phase, x, sendFirst } = await crossingsWithPeer(t);
  // the first tensor opens the stream (that takes turns of its own); the second goes on the open stream
  await sendFirst();
  const next = points[1]!;
  const size = crossingShape(spec, next, BATCH).reduce((a, b) => a * b, 1);
  const theirs = new Float32Array(size).fill(7);
  run.mailbox.put(mailKey(phase, next, 'FORWARD'), theirs);
  // without the turn the worker would compute on with its tensor still queued in HTTP/2, its peer waiting for it
  const r = await turnBefore(() => x.cross(next, 'FORWARD', new Float32Array(size), true));
  t.is(r.value, theirs);
  t.true(r.turned);
  await h.arrivedCount(2);
  h.release();
  h.release();
  await x.acked();
});

test("a wait that blocked lets the event loop turn once the peer's tensor is here (its acknowledgement, written on arrival, leaves)", async (t) => {
  const { run, phase, x } = await crossingsWithPeer(t);
  const theirs = new Float32Array(floats).fill(3);
  let turned = false;
  // the tensor arrives after the wait began; in the same turn something else is queued for the next one
  setTimeout(() => {
    run.mailbox.put(mailKey(phase, POINT, 'FORWARD'), theirs);
    setImmediate(() => (turned = true));
  }, 5);
  t.is(await x.cross(POINT, 'FORWARD', null, true), theirs);
  t.true(turned);
  // one already here: no turn needed, none taken
  const next = points[1]!;
  const ready = new Float32Array(crossingShape(spec, next, BATCH).reduce((a, b) => a * b, 1));
  run.mailbox.put(mailKey(phase, next, 'FORWARD'), ready);
  const r = await turnBefore(() => x.cross(next, 'FORWARD', null, true));
  t.is(r.value, ready);
  t.false(r.turned);
});
