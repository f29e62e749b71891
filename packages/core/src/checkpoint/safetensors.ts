/**
 * The safetensors format (https://github.com/huggingface/safetensors): an
 * 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and byte range, then the raw little-endian data. Only F32
 * tensors here; string metadata goes in "__metadata__".
 *
 * Checksums: the files written here carry a CRC-32C of each tensor's bytes
 * and of the header, in two metadata entries that other safetensors readers
 * pass over as plain strings:
 *
 *   crc32c_tensors  JSON object: tensor name -> 8 hex digits of the CRC-32C of its data bytes
 *   crc32c_header   8 hex digits: the CRC-32C of the header without this entry, as canonical JSON
 *                   (keys sorted at every level, no spaces), so that it covers every tensor's
 *                   dtype, shape and byte range, the metadata and the tensor checksums
 *
 * `decodeSafetensors` checks both when present and says which part is damaged; a file without them
 * (written before they were added, or by another program) is read unverified and says so
 * (`checksums: 'absent'`). The checksum entries are not part of the metadata it returns.
 */
import { crc32cHex } from '../crc32c.js';

export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export class SafetensorsError extends Error {
  /**
   * `notSafetensors`: the file does not even start like a safetensors file (another kind of file); `unsupported`: a
   * sound file this reader does not read (a dtype other than F32).
   */
  constructor(message: string, readonly notSafetensors = false, readonly unsupported = false) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

const TENSOR_CRCS = 'crc32c_tensors';
const HEADER_CRC = 'crc32c_header';

/** JSON with the keys of every object sorted: the form the header checksum is taken of. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const headerCrc = (header: Record<string, unknown>): string => {
  const meta = { ...(header.__metadata__ as Record<string, string>) };
  delete meta[HEADER_CRC];
  return crc32cHex(Buffer.from(canonicalJson({ ...header, __metadata__: meta }), 'utf8'));
};

/**
 * Whether a header matches its checksum `want`: as it stands, or with its tensors laid out again in the order
 * its writer here laid them (the order of the tensor checksums): another safetensors writer (Python's
 * `save_file`) that saves the same tensors and metadata again orders the tensors its own way, which moves their
 * byte ranges and nothing else; each tensor's bytes are still checked against its own checksum.
 */
function headerMatches(header: Record<string, unknown>, want: string): boolean {
  if (headerCrc(header) === want) return true;
  const meta = header.__metadata__ as Record<string, string> | undefined;
  let order: string[];
  try {
    order = Object.keys(JSON.parse(meta?.[TENSOR_CRCS] ?? '') as Record<string, string>);
  } catch {
    return false;
  }
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  if (order.length !== names.length || !order.every((k) => k in header)) return false;
  const relaid: Record<string, unknown> = { __metadata__: meta };
  let offset = 0;
  for (const name of order) {
    const e = header[name] as Partial<TensorEntry> | null;
    if (e === null || typeof e !== 'object' || !Array.isArray(e.shape) || !e.shape.every(isCount)) return false;
    const bytes = 4 * e.shape.reduce((a, b) => a * b, 1);
    relaid[name] = { ...e, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  return headerCrc(relaid) === want;
}

const bytesOf = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function encodeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  const crcs: Record<string, string> = {};
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new SafetensorsError(`${t.name}: shape [${t.shape.join(', ')}] holds ${n} values, data has ${t.data.length}`);
    if (t.name in header || t.name === '__metadata__') throw new SafetensorsError(`tensor ${t.name} named twice`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    crcs[t.name] = crc32cHex(isLittleEndian ? bytesOf(t.data) : littleEndianBytes(t.data));
    offset += t.data.byteLength;
  }
  const { [TENSOR_CRCS]: _t, [HEADER_CRC]: _h, ...given } = metadata;
  header.__metadata__ = { ...given, [TENSOR_CRCS]: JSON.stringify(crcs) };
  (header.__metadata__ as Record<string, string>)[HEADER_CRC] = headerCrc(header);
  // the header is padded with spaces to a multiple of 8 bytes, as the reference writer does
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let pos = 8 + head.length;
  for (const t of tensors) {
    out.set(isLittleEndian ? bytesOf(t.data) : littleEndianBytes(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
}

const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function littleEndianBytes(a: Float32Array): Uint8Array {
  const b = Buffer.alloc(a.byteLength);
  for (let i = 0; i < a.length; i++) b.writeFloatLE(a[i]!, 4 * i);
  return b;
}

interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function checkEntry(name: string, e: unknown): TensorEntry {
  const o = e as Partial<TensorEntry> | null;
  if (o === null || typeof o !== 'object' || typeof o.dtype !== 'string' || !Array.isArray(o.shape) || !o.shape.every(isCount) || !Array.isArray(o.data_offsets) || o.data_offsets.length !== 2 || !o.data_offsets.every(isCount)) {
    throw new SafetensorsError(`the header's entry for ${name} is not {dtype, shape, data_offsets}: the header is damaged`);
  }
  return o as TensorEntry;
}

export interface DecodedSafetensors {
  readonly tensors: Map<string, NamedTensor>;
  /** The metadata, without the checksum entries. */
  readonly metadata: Record<string, string>;
  /** 'verified': the header and every tensor match their CRC-32C; 'absent': the file has no checksums (read unverified). */
  readonly checksums: 'verified' | 'absent';
}

/** The safetensors dtypes other than F32: a tensor of one is sound, and not read here. */
const OTHER_DTYPES = new Set(['F16', 'BF16', 'F64', 'F8_E4M3', 'F8_E5M2', 'I8', 'I16', 'I32', 'I64', 'U8', 'U16', 'U32', 'U64', 'BOOL']);

const unsupportedDtype = (name: string, dtype: string) => new SafetensorsError(`tensor ${name}: dtype ${dtype}, only F32 is read (save the tensors as float32)`, false, true);

/** The bytes of a file's start that headerLength reads: the header's length and the header's first byte. */
export const HEADER_START_BYTES = 9;

/**
 * The length of a safetensors file's JSON header, from the file's first HEADER_START_BYTES bytes (all of them,
 * for a shorter file) and its size; a SafetensorsError when the file is empty, too short for a header, does not
 * start like a safetensors file (another kind of file: notSafetensors), or its header runs past its end.
 */
export function headerLength(start: Buffer, size: number): number {
  if (size === 0) throw new SafetensorsError('the file is empty');
  if (size < 8) {
    // a few bytes of text (a note, a word) are another kind of file; other bytes may be a header's length cut short
    const text = start.subarray(0, size).every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127));
    throw text ? new SafetensorsError(`it is ${size} bytes of text`, true) : new SafetensorsError(`the file is ${size} bytes, too short for a safetensors header: truncated?`);
  }
  if (size > 8 && start[8] !== 0x7b) throw new SafetensorsError('it does not start like one (an 8-byte header length, then a JSON header)', true);
  const n = Number(start.readBigUInt64LE(0));
  if (8 + n > size) throw new SafetensorsError(`its header of ${n} bytes runs past the end of the file (${size} bytes): truncated, or the header length is damaged`);
  return n;
}

/** A safetensors header's JSON object from its bytes; a SafetensorsError when it does not parse or is no object. */
export function parseHeader(bytes: Buffer): Record<string, unknown> {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new SafetensorsError(`its header does not parse (${(e as Error).message}): the header is damaged`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError('its header is not a JSON object: the header is damaged');
  return header;
}

/** A header's metadata as written (checksum entries included); a SafetensorsError when it is not a map of strings. */
export function rawMetadata(header: Record<string, unknown>): Record<string, string> {
  const rawMeta = header.__metadata__ ?? {};
  if (rawMeta === null || typeof rawMeta !== 'object' || !Object.values(rawMeta).every((v) => typeof v === 'string')) {
    throw new SafetensorsError('its metadata is not a map of strings: the header is damaged');
  }
  return rawMeta as Record<string, string>;
}

/**
 * The metadata of a file whose header reads and matches its checksum, whatever its tensors hold (what a file
 * with a damaged tensor still says of itself); null when the header does not read, has no checksum or does not
 * match it.
 */
export function checkedHeaderMetadata(buf: Buffer): Record<string, string> | null {
  try {
    const header = parseHeader(buf.subarray(8, 8 + headerLength(buf, buf.length)));
    const meta = rawMetadata(header);
    return meta[HEADER_CRC] !== undefined && headerMatches(header, meta[HEADER_CRC]) ? meta : null;
  } catch {
    return null;
  }
}

/**
 * Reads a safetensors file, checking its structure and, when it has them, its checksums; a SafetensorsError
 * saying what is wrong (empty, truncated, a header that does not parse, a damaged header or tensor) otherwise.
 */
export function decodeSafetensors(buf: Buffer): DecodedSafetensors {
  const n = headerLength(buf, buf.length);
  const header = parseHeader(buf.subarray(8, 8 + n));
  const rawMeta = rawMetadata(header);
  const { [TENSOR_CRCS]: tensorCrcText, [HEADER_CRC]: headerCrcText, ...metadata } = rawMeta as Record<string, string>;
  // a sound file of another dtype (a model saved in float16) is said as such before its checksums, which its
  // conversion changed; no single damaged bit turns "F32" into one of these
  for (const [name, entry] of Object.entries(header)) {
    const dtype = (entry as { dtype?: unknown } | null)?.dtype;
    if (name !== '__metadata__' && typeof dtype === 'string' && dtype !== 'F32' && OTHER_DTYPES.has(dtype)) throw unsupportedDtype(name, dtype);
  }
  let crcs: Record<string, string> | null = null;
  if (headerCrcText !== undefined || tensorCrcText !== undefined) {
    if (headerCrcText === undefined || !headerMatches(header, headerCrcText)) {
      throw new SafetensorsError(`its header does not match its checksum: the header (or metadata) is damaged, or was changed by another program (a file changed on purpose reads once its ${HEADER_CRC} and ${TENSOR_CRCS} metadata entries are removed)`);
    }
    try {
      crcs = JSON.parse(tensorCrcText ?? '') as Record<string, string>;
    } catch {
      throw new SafetensorsError('its tensor checksums do not parse: the header is damaged');
    }
  }
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  let end = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = checkEntry(name, entry);
    if (e.dtype !== 'F32') throw OTHER_DTYPES.has(e.dtype) ? unsupportedDtype(name, e.dtype) : new SafetensorsError(`tensor ${name}: dtype ${JSON.stringify(e.dtype)} is no safetensors dtype: the header is damaged`);
    const [a, b] = e.data_offsets;
    if (base + b > buf.length) throw new SafetensorsError(`tensor ${name}: its bytes [${a}, ${b}) run past the end of the file (${buf.length - base} bytes of data): truncated?`);
    if (b < a || b - a !== 4 * e.shape.reduce((x, y) => x * y, 1)) throw new SafetensorsError(`tensor ${name}: its byte range [${a}, ${b}) does not fit its shape [${e.shape.join(', ')}]`);
    const bytes = buf.subarray(base + a, base + b);
    if (crcs) {
      const want = crcs[name];
      if (want === undefined) throw new SafetensorsError(`tensor ${name} has no checksum: the header is damaged`);
      if (crc32cHex(bytes) !== want) throw new SafetensorsError(`tensor ${name} does not match its checksum (its data, bytes ${base + a}..${base + b} of the file)`);
    }
    end = Math.max(end, b);
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
  if (crcs && base + end !== buf.length) throw new SafetensorsError(`the file has ${buf.length - base - end} bytes past the end of its data`);
  return { tensors, metadata, checksums: crcs ? 'verified' : 'absent' };
}

/**
 * The largest magnitude a checkpoint or model value may have: about 1.84e19, the square root of float32's
 * largest value, past which the value's square (weight decay, the next layer's products) overflows to
 * infinity. A value beyond it is absurd: a damaged file (a planted 3e38) or a run that diverged, whose
 * coordinator refuses to write it (the coordinator's divergence check uses the same bound).
 */
export const ABSURD_MAGNITUDE = Math.sqrt(3.4028234663852886e38);

/** The first tensor holding a non-finite or absurd (|x| > ABSURD_MAGNITUDE) value, said in words; null when all are sound. */
export function unsoundValue(tensors: Iterable<NamedTensor>): string | null {
  for (const t of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      if (!(Math.abs(v) <= ABSURD_MAGNITUDE)) {
        const what = Number.isNaN(v) ? 'NaN' : !Number.isFinite(v) ? String(v) : `the absurd value ${v.toPrecision(3)} (beyond ±${ABSURD_MAGNITUDE.toPrecision(3)}, where its square overflows float32)`;
        return `tensor ${t.name} holds ${what} at index ${i}`;
      }
    }
  }
  return null;
}
