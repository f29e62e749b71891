/**
 * Crossing tensors are written so that the receiver reads each one in place: its floats start 4-byte aligned
 * in the buffer gRPC hands to the decoder, the request decodes to the same values as the stock serialiser's,
 * and a reader whose Tensor has no `padding` field (an older build) reads the same request. Through grpc-js:
 * on the exchange stream, and in Exchange and EvalExchange calls.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRAME_HEADER_BYTES, peerRequestSerializer } from '../src/aligned-exchange.js';
import { ExchangeStream } from '../src/exchange-stream.js';
import { decodeTensor, loaderOptions, protocol, type EvalExchangeRequest, type ExchangeRequest } from '../src/protocol.js';
import { unary } from '../src/rpc.js';
import { streamPeer } from './stream-peer.js';

type Method = 'Stream' | 'Exchange' | 'EvalExchange';
const stock = (method: Method) => protocol().Peer.service[method]!.requestSerialize as (m: object) => Buffer;
const decode = (method: Method) => protocol().Peer.service[method]!.requestDeserialize as (b: Buffer) => ExchangeRequest & EvalExchangeRequest;

/** The message as grpc-js's decoder hands it on: joined with its frame header into one new buffer, then past the header. */
function received(message: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message], FRAME_HEADER_BYTES + message.length).subarray(FRAME_HEADER_BYTES);
}

/** A request with `floats` floats (the shape's product unless given: the serialisers do not check it). */
function request(runId: string, shape: number[], floats = shape.reduce((a, b) => a * b, 1)): ExchangeRequest {
  const x = Float32Array.from({ length: floats }, (_, i) => Math.sin(i + runId.length) * 1e3);
  const micro = shape.length > 1 ? 3 : 0;
  return { run_id: runId, step: 7 + runId.length, point: 'pool2', direction: 'BACKWARD', from_tower: 1, tensor: { shape, data: Buffer.from(x.buffer) }, micro_batch: micro, micro_batches: micro > 0 ? 4 : 0 };
}

const evalRequest = (r: ExchangeRequest): EvalExchangeRequest => ({ run_id: r.run_id, evaluation: r.step, point: r.point, from_tower: r.from_tower, batch: 16, tensor: r.tensor });

// run ids of every length mod 4; tensors whose length prefixes sit on the varint boundaries (data of 124-132
// bytes, the tensor field past 16,383 bytes: [4094] and [4095]), small, pooled and large messages; an empty
// shape, a zero dimension, and a dimension of 2^28 (a five-byte varint, with no floats)
const cases: ExchangeRequest[] = [];
for (const id of ['', 'a', 'ab', 'abc', 'run-0123456789abcdef']) {
  for (const shape of [[1], [2, 3], [30], [31], [32], [33], [4094], [4095], [4096], [4097], [96, 2, 5, 5], [256, 128, 13, 13], [4096, 129]]) cases.push(request(id, shape));
  cases.push(request(id, [], 3), request(id, [0]), request(id, [2 ** 28, 0]));
}
// through grpc-js: one large message (2 MiB) rather than five
const wireCases = cases.filter((c) => c.tensor.data.length < 1 << 20 || c.run_id === 'abc');
const what = (r: ExchangeRequest) => `run id of ${r.run_id.length}, shape [${r.tensor.shape}], ${r.tensor.data.length} bytes`;

test('every request decodes with its floats 4-byte aligned in the received buffer, the same as the stock serialiser', (t) => {
  let stockAligned = 0;
  for (const method of ['Stream', 'Exchange', 'EvalExchange'] as const) {
    for (const c of cases) {
      const req = method === 'EvalExchange' ? evalRequest(c) : c;
      const got = decode(method)(received(peerRequestSerializer(method)(req)));
      const want = decode(method)(received(stock(method)(req)));
      if (want.tensor.data.byteOffset % 4 === 0) stockAligned++;
      t.is(got.tensor.data.byteOffset % 4, 0, what(c));
      t.true(got.tensor.padding!.every((b) => b === 0), what(c));
      const { tensor: a, ...restGot } = got;
      const { tensor: b, ...restWant } = want;
      t.deepEqual(restGot, restWant, `${method}: ${what(c)}`);
      t.deepEqual(a.shape, b.shape, `${method}: ${what(c)}`);
      t.true(a.data.equals(b.data), `${method}: ${what(c)}`);
      // read in place: a view of the received buffer, not a copy
      const x = decodeTensor({ shape: [got.tensor.data.length / 4], data: got.tensor.data }, undefined, true);
      t.is(x.buffer, got.tensor.data.buffer, what(c));
    }
  }
  t.true(stockAligned < 3 * cases.length, 'the stock serialiser leaves some unaligned (else this test proves nothing)');
  const bare = { ...cases[0]!, tensor: null as unknown as ExchangeRequest['tensor'] };
  t.true(peerRequestSerializer('Stream')(bare).equals(stock('Stream')(bare)), 'no tensor: as the stock serialiser writes it');
});

test('a reader whose Tensor has no padding field (an older build) reads the same request', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'old-proto-'));
  writeFileSync(
    join(dir, 'old.proto'),
    `syntax = "proto3";
package old;
message Tensor { repeated uint32 shape = 1; bytes data = 2; }
enum Direction { DIRECTION_UNSPECIFIED = 0; FORWARD = 1; BACKWARD = 2; }
message ExchangeRequest { string run_id = 1; uint64 step = 2; string point = 3; Direction direction = 4; uint32 from_tower = 5; Tensor tensor = 6; }
message Ack { uint32 code = 1; }
service Peer { rpc Stream(stream ExchangeRequest) returns (stream Ack); }
`,
  );
  const def = protoLoader.loadSync(join(dir, 'old.proto'), { ...loaderOptions, includeDirs: [dir] });
  const decodeOld = (def['old.Peer'] as grpc.ServiceDefinition)['Stream']!.requestDeserialize as (b: Buffer) => { run_id: string; step: number; point: string; direction: string; tensor: { shape: number[]; data: Buffer } };
  for (const req of cases) {
    const got = decodeOld(received(peerRequestSerializer('Stream')(req)));
    t.is(got.run_id, req.run_id);
    t.is(got.step, req.step);
    t.is(got.direction, req.direction);
    t.deepEqual(got.tensor.shape, req.tensor.shape, what(req));
    t.true(got.tensor.data.equals(req.tensor.data), what(req));
  }
});

test('through grpc-js: the peer receives every tensor of the exchange stream 4-byte aligned', async (t) => {
  const offsets: number[] = [];
  const same: boolean[] = [];
  const port = await streamPeer(
    t,
    (call) => {
      call.on('data', (r: ExchangeRequest) => {
        // sent one at a time, in the order of `cases`
        same.push(r.tensor.data.equals(wireCases[offsets.length]!.tensor.data));
        offsets.push(r.tensor.data.byteOffset % 4);
        call.write({ step: r.step, point: r.point, direction: r.direction, code: 0, message: '', micro_batch: r.micro_batch });
      });
      call.on('end', () => call.end());
    },
    { 'grpc.max_receive_message_length': 64 << 20 },
  );
  const client = new (protocol().Peer)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20 });
  t.teardown(() => client.close());
  const s = new ExchangeStream(client);
  t.teardown(() => s.close());
  for (const req of wireCases) await s.send(req, 60_000, new AbortController().signal);
  t.deepEqual(offsets, wireCases.map(() => 0));
  t.deepEqual(same, wireCases.map(() => true));
  t.is(s.opened, 1);
});

test('through grpc-js: Exchange and EvalExchange calls with the aligned serialiser deliver their tensors 4-byte aligned', async (t) => {
  const seen: { method: string; offset: number; same: boolean }[] = [];
  let next = 0;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20 });
  const take = (method: string) => (call: grpc.ServerUnaryCall<ExchangeRequest, object>, cb: grpc.sendUnaryData<object>) => {
    seen.push({ method, offset: call.request.tensor.data.byteOffset % 4, same: call.request.tensor.data.equals(wireCases[next % wireCases.length]!.tensor.data) });
    cb(null, {});
  };
  const none = (_: unknown, cb: (e: Partial<grpc.StatusObject>) => void) => cb({ code: grpc.status.UNIMPLEMENTED });
  server.addService(protocol().Peer.service, { Hello: none, Stream: none, Exchange: take('Exchange'), EvalExchange: take('EvalExchange') });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  const client = new (protocol().Peer)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20 });
  t.teardown(() => client.close());
  for (const c of wireCases) {
    await unary(client, 'Exchange', c, { serialize: peerRequestSerializer('Exchange') });
    next++;
  }
  for (const c of wireCases) {
    await unary(client, 'EvalExchange', evalRequest(c), { serialize: peerRequestSerializer('EvalExchange') });
    next++;
  }
  t.deepEqual(
    seen.map((s) => s.method),
    [...wireCases.map(() => 'Exchange'), ...wireCases.map(() => 'EvalExchange')],
  );
  t.deepEqual(
    seen.filter((s) => s.offset !== 0 || !s.same),
    [],
  );
});
