/**
 * The exchange stream's requests are written so that the receiver reads each tensor in place: its floats start
 * 4-byte aligned in the buffer gRPC hands to the decoder, the request decodes to the same values as the stock
 * serialiser's, and a reader whose Tensor has no `padding` field (an older build) reads the same request.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRAME_HEADER_BYTES, alignedExchangeSerializer } from '../src/aligned-exchange.js';
import { ExchangeStream } from '../src/exchange-stream.js';
import { decodeTensor, loaderOptions, protocol, type ExchangeRequest } from '../src/protocol.js';
import { streamPeer } from './stream-peer.js';

const method = () => protocol().Peer.service['Stream']!;
const stock = (req: ExchangeRequest) => (method().requestSerialize as (m: object) => Buffer)(req);
const aligned = (req: ExchangeRequest) => alignedExchangeSerializer(method().requestSerialize as (m: object) => Buffer)(req);

/** The message as grpc-js's decoder hands it on: joined with its frame header into one new buffer, then past the header. */
function received(message: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message], FRAME_HEADER_BYTES + message.length).subarray(FRAME_HEADER_BYTES);
}

function request(runId: string, shape: number[], micro = 0): ExchangeRequest {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i + runId.length) * 1e3);
  return { run_id: runId, step: 7 + runId.length, point: 'pool2', direction: 'BACKWARD', from_tower: 1, tensor: { shape, data: Buffer.from(x.buffer) }, micro_batch: micro, micro_batches: micro > 0 ? 4 : 0 };
}

// run ids of every length mod 4, and tensors whose length prefixes sit on the varint boundaries (127/128 bytes,
// 16383/16384) as well as small, pooled and large messages
const cases: ExchangeRequest[] = [];
for (const id of ['', 'a', 'ab', 'abc', 'run-0123456789abcdef']) {
  for (const shape of [[1], [2, 3], [30], [31], [32], [33], [4095], [4096], [4097], [96, 2, 5, 5], [256, 128, 13, 13], [4096, 129]]) {
    cases.push(request(id, shape, shape.length > 1 ? 3 : 0));
  }
}

test('every request decodes with its floats 4-byte aligned in the received buffer, the same as the stock serialiser', (t) => {
  const decode = method().requestDeserialize as (b: Buffer) => ExchangeRequest;
  let stockAligned = 0;
  for (const req of cases) {
    const got = decode(received(aligned(req)));
    const want = decode(received(stock(req)));
    if (want.tensor.data.byteOffset % 4 === 0) stockAligned++;
    const what = `run id of ${req.run_id.length}, shape [${req.tensor.shape}]`;
    t.is(got.tensor.data.byteOffset % 4, 0, what);
    t.deepEqual(got.tensor.shape, req.tensor.shape, what);
    t.true(got.tensor.data.equals(req.tensor.data), what);
    t.is(got.tensor.padding!.every((b) => b === 0), true, what);
    const { tensor: a, ...restGot } = got;
    const { tensor: b, ...restWant } = want;
    t.deepEqual(restGot, restWant, what);
    // read in place: a view of the received buffer, not a copy
    const x = decodeTensor(got.tensor, req.tensor.shape, true);
    t.is(x.buffer, got.tensor.data.buffer, what);
    t.deepEqual(a.shape, b.shape);
  }
  t.true(stockAligned < cases.length, 'the stock serialiser leaves some unaligned (else this test proves nothing)');
  t.is(aligned({ ...cases[0]!, tensor: null as unknown as ExchangeRequest['tensor'] }).length, stock({ ...cases[0]!, tensor: null as unknown as ExchangeRequest['tensor'] }).length, 'no tensor: as it was');
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
    const got = decodeOld(received(aligned(req)));
    t.is(got.run_id, req.run_id);
    t.is(got.step, req.step);
    t.is(got.direction, req.direction);
    t.deepEqual(got.tensor.shape, req.tensor.shape);
    t.true(got.tensor.data.equals(req.tensor.data));
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
        same.push(r.tensor.data.equals(cases[offsets.length]!.tensor.data));
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
  for (const req of cases) await s.send(req, 60_000, new AbortController().signal);
  t.deepEqual(offsets, cases.map(() => 0));
  t.deepEqual(same, cases.map(() => true));
  t.is(s.opened, 1);
});
