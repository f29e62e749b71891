/**
 * The safetensors format (https://github.com/huggingface/safetensors): an
 * 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and byte range, then the raw little-endian data. Only F32
 * tensors here; string metadata goes in "__metadata__".
 */
export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

export function encodeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new SafetensorsError(`${t.name}: shape [${t.shape.join(', ')}] holds ${n} values, data has ${t.data.length}`);
    if (t.name in header) throw new SafetensorsError(`tensor ${t.name} named twice`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  // the header is padded with spaces to a multiple of 8 bytes, as the reference writer does
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let pos = 8 + head.length;
  for (const t of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (isLittleEndian) bytes.copy(out, pos);
    else for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i]!, pos + 4 * i);
    pos += t.data.byteLength;
  }
  return out;
}

const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function decodeSafetensors(buf: Buffer): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new SafetensorsError('file too short for a safetensors header');
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new SafetensorsError(`header of ${n} bytes runs past the end of the file (${buf.length} bytes): truncated?`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(`unreadable header: ${(e as Error).message}`);
  }
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (e.dtype !== 'F32') throw new SafetensorsError(`${name}: dtype ${e.dtype}, only F32 is read`);
    const [a, b] = e.data_offsets;
    if (base + b > buf.length || b - a !== 4 * e.shape.reduce((x, y) => x * y, 1)) throw new SafetensorsError(`${name}: byte range [${a}, ${b}) does not fit its shape or the file`);
    let data: Float32Array;
    if (isLittleEndian) {
      // a copy: the file's bytes need not be 4-byte aligned
      data = new Float32Array(buf.buffer.slice(buf.byteOffset + base + a, buf.byteOffset + base + b));
    } else {
      data = new Float32Array((b - a) / 4);
      for (let i = 0; i < data.length; i++) data[i] = buf.readFloatLE(base + a + 4 * i);
    }
    tensors.set(name, { name, shape: e.shape, data });
  }
  return { tensors, metadata };
}
