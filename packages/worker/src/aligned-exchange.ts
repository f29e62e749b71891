/**
 * A crossing tensor's request (ExchangeRequest on Peer.Stream and Peer.Exchange, EvalExchangeRequest: each
 * has its Tensor as field 6) serialised so that the tensor's floats start 4-byte aligned in the buffer the
 * receiving gRPC server decodes it from, so that the receiver reads them as a Float32Array view of that
 * buffer (protocol.ts decodeTensor with `view`) instead of copying every received tensor once more.
 *
 * grpc-js (1.14, the version this project pins) joins a received message, with its 5-byte frame header, into
 * one new buffer whose start is 8-byte aligned (a fresh ArrayBuffer, or Node's buffer pool, whose slices start
 * at multiples of 8), and protobuf.js decodes a bytes field as a view of that buffer: the floats lie at 5 +
 * their offset in the message. The sender chooses that offset by writing `Tensor.padding` (field 15, zeros,
 * ignored by every reader; a reader of an older build skips it as an unknown field) between the tensor's
 * shape and its data: protobuf lets a message's fields come in any order. A receiver that assembles messages differently still decodes the same
 * tensor, and copies it when it is not aligned, as before.
 */
import { protocol, type Tensor } from './protocol.js';

/** gRPC's length prefix before each message on the wire: the compressed flag and the length. */
export const FRAME_HEADER_BYTES = 5;

// field tags (field number << 3 | wire type 2, length-delimited), each one byte
const REQUEST_TENSOR_TAG = (6 << 3) | 2; // ExchangeRequest.tensor, EvalExchangeRequest.tensor
const SHAPE_TAG = (1 << 3) | 2; // Tensor.shape, packed
const DATA_TAG = (2 << 3) | 2; // Tensor.data
const PADDING_TAG = (15 << 3) | 2; // Tensor.padding

function varintBytes(n: number): number {
  let k = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    k++;
  }
  return k;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

/**
 * The bytes of Tensor.padding written before the data: none, or a field of 2 bytes or more (tag, length, zeros).
 * Four consecutive sizes give every remainder mod 4; the tensor's length prefix may grow by a byte on the way
 * (from 127 bytes to 128), hence sizes up to 9.
 */
const PADDING_CHOICES = [0, 2, 3, 4, 5, 6, 7, 8, 9] as const;

/** A request whose field 6 is its Tensor. */
export interface TensorRequest {
  tensor: Tensor | null;
}

/**
 * `serialize` (the stock serialiser of a TensorRequest) with the tensor written by hand: the rest of the
 * request as `serialize` writes it, then the tensor field with Tensor.padding sized so that the data starts at
 * a multiple of 4 once the frame header is before it. A request without a tensor is serialised as it is.
 */
export function alignedTensorSerializer<R extends TensorRequest>(serialize: (msg: object) => Buffer): (req: R) => Buffer {
  return (req) => {
    const { tensor: t, ...rest } = req;
    if (!t) return serialize(req);
    const head = serialize(rest);
    for (const d of t.shape) {
      if (!(Number.isInteger(d) && d >= 0 && d <= 0xffffffff)) throw new Error(`tensor dimension ${d} is not a uint32`);
    }
    const shapeBytes = t.shape.reduce((a, d) => a + varintBytes(d), 0);
    const shapeField = t.shape.length > 0 ? 1 + varintBytes(shapeBytes) + shapeBytes : 0;
    const dataField = 1 + varintBytes(t.data.byteLength) + t.data.byteLength;
    for (const pad of PADDING_CHOICES) {
      const tensorBytes = shapeField + pad + dataField;
      const dataAt = head.length + 1 + varintBytes(tensorBytes) + tensorBytes - t.data.byteLength;
      if ((FRAME_HEADER_BYTES + dataAt) % 4 !== 0) continue;
      const out = Buffer.allocUnsafe(dataAt + t.data.byteLength);
      head.copy(out, 0);
      let at = head.length;
      out[at++] = REQUEST_TENSOR_TAG;
      at = writeVarint(out, at, tensorBytes);
      if (shapeField > 0) {
        out[at++] = SHAPE_TAG;
        at = writeVarint(out, at, shapeBytes);
        for (const d of t.shape) at = writeVarint(out, at, d);
      }
      if (pad > 0) {
        out[at++] = PADDING_TAG;
        out[at++] = pad - 2;
        out.fill(0, at, at + pad - 2);
        at += pad - 2;
      }
      out[at++] = DATA_TAG;
      at = writeVarint(out, at, t.data.byteLength);
      t.data.copy(out, at);
      return out;
    }
    // unreachable: four consecutive sizes after the length prefix's last growth cover every remainder
    throw new Error('no padding aligns the tensor');
  };
}

type TensorMethod = 'Stream' | 'Exchange' | 'EvalExchange';
const serializers = new Map<TensorMethod, (req: TensorRequest) => Buffer>();

/** The aligned serialiser of a Peer method's request (Stream, Exchange, EvalExchange: their requests carry a Tensor as field 6). */
export function peerRequestSerializer<R extends TensorRequest>(method: TensorMethod): (req: R) => Buffer {
  let s = serializers.get(method);
  if (!s) {
    s = alignedTensorSerializer(protocol().Peer.service[method]!.requestSerialize as (msg: object) => Buffer);
    serializers.set(method, s);
  }
  return s;
}
