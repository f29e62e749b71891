/**
 * ExchangeStream against small Peer.Stream servers: sends resolve in order once acknowledged, many large
 * tensors at once pass HTTP/2's flow control, a refusal in an ack fails only its send, and a stream that
 * breaks fails every send in flight with one clear message (the next send opens a new stream).
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { ExchangeStream } from '../src/exchange-stream.js';
import { protocol, type ExchangeRequest } from '../src/protocol.js';
import { streamPeer, type StreamHandler } from './stream-peer.js';

async function peerServer(t: import('ava').ExecutionContext, stream: StreamHandler): Promise<grpc.Client> {
  const port = await streamPeer(t, stream, { 'grpc.max_receive_message_length': 64 << 20 });
  const client = new (protocol().Peer)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20 });
  t.teardown(() => client.close());
  return client;
}

const req = (step: number, point: string, floats: number): ExchangeRequest => ({
  run_id: 'r',
  step,
  point,
  direction: 'FORWARD',
  from_tower: 0,
  tensor: { shape: [floats], data: Buffer.from(new Float32Array(floats).fill(step).buffer) },
});

/** A signal of its own for each send (one shared by 24 sends would pass Node's listener warning threshold). */
const never = () => new AbortController().signal;

test('sends are acknowledged in order; 24 tensors of 4 MiB at once pass flow control; a refused tensor fails only its own send', async (t) => {
  const seen: number[] = [];
  const client = await peerServer(t, (call) => {
    call.on('data', (r: ExchangeRequest) => {
      seen.push(r.step);
      const refuse = r.point === 'conv9';
      call.write({ step: r.step, point: r.point, direction: r.direction, code: refuse ? grpc.status.INVALID_ARGUMENT : 0, message: refuse ? 'no crossing point conv9' : '' });
    });
    call.on('end', () => call.end());
  });
  const s = new ExchangeStream(client);
  t.teardown(() => s.close());
  // most of them wait for 'drain' before they are written: each says when it is, before its ack
  const written: number[] = [];
  const sends = Array.from({ length: 24 }, (_, i) =>
    s.send(req(i, 'pool2', 1 << 20), 60_000, never(), () => written.push(i)).then(() => t.true(written.includes(i), `tensor ${i} written before its ack`)),
  );
  await Promise.all(sends);
  t.deepEqual(seen, Array.from({ length: 24 }, (_, i) => i), 'the peer took them in the order sent');
  t.deepEqual(written, Array.from({ length: 24 }, (_, i) => i), 'written once each, in order');
  const e = (await t.throwsAsync(s.send(req(24, 'conv9', 4), 60_000, never()))) as grpc.ServiceError;
  t.is(e.code, grpc.status.INVALID_ARGUMENT);
  t.is(e.details, 'no crossing point conv9');
  await s.send(req(25, 'pool2', 4), 60_000, never());
  t.is(s.opened, 1, 'one stream for all of them');
});

test('a stream that breaks fails every send in flight with the reason; the next send opens a new stream', async (t) => {
  let calls = 0;
  const client = await peerServer(t, (call) => {
    calls++;
    const first = calls === 1;
    call.on('data', (r: ExchangeRequest) => {
      // the first stream takes two tensors without answering, then ends with an error
      if (first && r.step === 1) call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the peer went away' });
      else if (!first) call.write({ step: r.step, point: r.point, direction: r.direction, code: 0, message: '' });
    });
    call.on('error', () => {});
  });
  const s = new ExchangeStream(client);
  t.teardown(() => s.close());
  const inFlight = [s.send(req(0, 'pool2', 4), 60_000, never()), s.send(req(1, 'pool2', 4), 60_000, never())];
  for (const p of inFlight) {
    const e = (await t.throwsAsync(p)) as grpc.ServiceError;
    t.is(e.code, grpc.status.UNAVAILABLE);
    t.is(e.details, 'the exchange stream failed: the peer went away');
  }
  await s.send(req(2, 'pool2', 4), 60_000, never());
  t.is(s.opened, 2);
});

test('a send that is not acknowledged in time fails with DEADLINE_EXCEEDED', async (t) => {
  const client = await peerServer(t, (call) => {
    call.on('data', () => {}); // never answers
    call.on('error', () => {});
  });
  const s = new ExchangeStream(client);
  t.teardown(() => s.close());
  const e = (await t.throwsAsync(s.send(req(0, 'pool2', 4), 200, never()))) as grpc.ServiceError;
  t.is(e.code, grpc.status.DEADLINE_EXCEEDED);
  t.regex(e.details, /no acknowledgement within/);
});
