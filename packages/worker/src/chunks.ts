/**
 * Parameter tensors on the wire in chunks of bounded size (worker.proto, ParameterTensor.row_offset): a tensor
 * whose data is over the chunk size travels as consecutive messages of whole rows (slices of its first
 * dimension), so that no GetParameters or SetParameters message is over a few MiB at any preset and no client
 * needs a raised receive limit. A tensor that fits is one message at row 0, as older builds send every tensor.
 * StreamActivations sends a layer's activations the same way (activationChunks).
 */
import { decodeTensor, encodeTensor, type GetActivationsReply, type ParameterTensor, type Tensor } from './protocol.js';

/** The most tensor data a ParameterTensor carries unless GetParametersRequest.max_chunk_bytes says otherwise. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

export interface TensorChunk {
  tensor: Tensor;
  row_offset: number;
  total_rows: number;
}

/** The messages of one tensor of `shape`: whole when its data fits in `maxBytes`, else chunks of whole rows (one row at least). */
export function* tensorChunks(shape: readonly number[], x: Float32Array, maxBytes = DEFAULT_CHUNK_BYTES): Generator<TensorChunk> {
  const rows = shape[0] ?? 1;
  const rowFloats = rows === 0 ? 0 : x.length / rows;
  const per = Math.max(1, Math.floor(maxBytes / Math.max(1, rowFloats * 4)));
  if (per >= rows) {
    yield { tensor: encodeTensor([...shape], x), row_offset: 0, total_rows: rows };
    return;
  }
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    yield { tensor: encodeTensor([n, ...shape.slice(1)], x.subarray(r * rowFloats, (r + n) * rowFloats)), row_offset: r, total_rows: rows };
  }
}

/** A malformed stream of chunks; the message says which tensor and what is wrong. */
export class ChunkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkError';
  }
}

interface Pending {
  readonly shape: number[];
  readonly data: Float32Array;
  rows: number;
}

/**
 * Puts ParameterTensor messages back together, one layer/kind at a time or interleaved, each checked as it
 * arrives: rows in order without gaps or overlaps, the same trailing dimensions, no tensor twice. Memory is the
 * whole tensors' and nothing more.
 */
export class ParameterAssembly {
  private readonly parts = new Map<string, Pending>();

  /**
   * Adds one message; `expect` is the whole tensor's shape when the receiver knows it (a worker: its preset's).
   * Returns the chunk's floats (already placed) so that the caller can check them, and whether the tensor is complete.
   */
  add(m: ParameterTensor, expect?: readonly number[]): { floats: Float32Array; firstIndex: number; complete: boolean } {
    const name = `${m.layer}.${m.kind}`;
    const t = m.tensor ?? { shape: [], data: Buffer.alloc(0) };
    const offset = m.row_offset ?? 0;
    let p = this.parts.get(name);
    if (!p) {
      if (offset !== 0) throw new ChunkError(`${name}: the first chunk starts at row ${offset}, not 0`);
      const total = m.total_rows || t.shape[0] || 0;
      const shape = t.shape.length === 0 ? [] : [total, ...t.shape.slice(1)];
      if (expect && (expect.length !== shape.length || expect.some((d, i) => d !== shape[i]))) {
        // the same words as decodeTensor's for a whole tensor
        throw new ChunkError(`${name}: tensor shape [${m.total_rows ? shape : t.shape}] where [${expect}] was expected`);
      }
      p = { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)), rows: 0 };
      this.parts.set(name, p);
    } else {
      if (p.rows >= (p.shape[0] ?? 1)) throw new ChunkError(`${name}: a second ${name} tensor in one stream`);
      if (offset !== p.rows) throw new ChunkError(`${name}: a chunk at row ${offset} where row ${p.rows} was next (chunks come in order, without gaps)`);
    }
    const total = p.shape[0] ?? 1;
    const rest = p.shape.slice(1);
    const rows = t.shape.length === 0 ? 1 : t.shape[0]!;
    if (t.shape.length !== p.shape.length || rest.some((d, i) => d !== t.shape[i + 1]) || (p.shape.length > 0 && rows + p.rows > total) || (m.total_rows && m.total_rows !== total)) {
      throw new ChunkError(`${name}: a chunk of shape [${t.shape}] at row ${offset} does not fit a tensor of shape [${p.shape}]`);
    }
    let floats: Float32Array;
    try {
      floats = decodeTensor(t);
    } catch (e) {
      throw new ChunkError(`${name}: ${(e as Error).message}`);
    }
    const rowFloats = rest.reduce((a, b) => a * b, 1);
    p.data.set(floats, p.rows * rowFloats);
    const firstIndex = p.rows * rowFloats;
    p.rows += p.shape.length === 0 ? 1 : rows;
    return { floats, firstIndex, complete: p.rows >= total };
  }

  /** A complete tensor, or undefined (missing or still partial). */
  get(layer: string, kind: string): Float32Array | undefined {
    const p = this.parts.get(`${layer}.${kind}`);
    return p && p.rows >= (p.shape[0] ?? 1) ? p.data : undefined;
  }

  /** The tensors begun but not finished ("fc6.w (rows 0..27 of 2048)"). */
  incomplete(): string[] {
    return [...this.parts].filter(([, p]) => p.rows < (p.shape[0] ?? 1)).map(([name, p]) => `${name} (${p.rows} of ${p.shape[0]} rows)`);
  }

  /** Every complete tensor by layer, then kind. */
  byLayer(): Map<string, Map<string, Float32Array>> {
    const out = new Map<string, Map<string, Float32Array>>();
    for (const [name, p] of this.parts) {
      if (p.rows < (p.shape[0] ?? 1)) continue;
      const dot = name.lastIndexOf('.');
      const layer = name.slice(0, dot);
      const m = out.get(layer) ?? new Map<string, Float32Array>();
      m.set(name.slice(dot + 1), p.data);
      out.set(layer, m);
    }
    return out;
  }
}

/** ParameterTensor messages read back into whole tensors, by layer and kind (a client's GetParameters); throws ChunkError. */
export function assembleParameters(msgs: Iterable<ParameterTensor>): Map<string, Map<string, Float32Array>> {
  const a = new ParameterAssembly();
  for (const m of msgs) a.add(m);
  const left = a.incomplete();
  if (left.length > 0) throw new ChunkError(`the stream ended inside ${left.join(', ')}`);
  return a.byLayer();
}

/**
 * A GetActivations reply as StreamActivations sends it: the first message has every field and the first rows of
 * the activations, each next one the next rows (timing and traffic unset).
 */
export function* activationChunks(reply: GetActivationsReply, maxBytes = DEFAULT_CHUNK_BYTES): Generator<GetActivationsReply> {
  const t = reply.activations;
  if (!t) {
    yield reply;
    return;
  }
  for (const c of tensorChunks(t.shape, decodeTensor(t), maxBytes)) {
    const part = { activations: c.tensor, row_offset: c.row_offset, total_rows: c.total_rows };
    yield c.row_offset === 0 ? { ...reply, ...part } : { evaluation: reply.evaluation, tower: reply.tower, layer: reply.layer, has_activations: true, timing: null, traffic: [], ...part };
  }
}
