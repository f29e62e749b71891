/**
 * NumPy's .npy format (version 1.0) for float32 arrays: what `numpy.load` reads, with no Python needed to
 * write it. A file is the magic "\x93NUMPY", the version (1, 0), a little-endian u16 header length, the
 * header (a Python dict literal: dtype '<f4', C order, the shape) padded with spaces to a 64-byte boundary
 * and ending in a newline, then the values, little-endian, row-major.
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** The .npy bytes of `values` as a float32 array of `shape` (row-major; the product of shape must be its length). */
export function encodeNpy(values: Float32Array, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== values.length || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`encodeNpy: shape (${shape.join(', ')}) does not hold ${values.length} values`);
  }
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // magic (6) + version (2) + header length (2) + header, a multiple of 64, the header ending in '\n'
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (header.length > 0xffff) throw new Error(`encodeNpy: a header of ${header.length} bytes needs format 2.0`);
  const out = Buffer.alloc(10 + header.length + values.length * 4);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  const body = 10 + header.length;
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, body + 4 * i);
  return out;
}

/** The shape and values of a float32 .npy file (version 1.0, C order) as encodeNpy writes it; an Error naming what differs. */
export function decodeNpy(bytes: Buffer): { shape: number[]; values: Float32Array } {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) throw new Error('not a .npy file (no \\x93NUMPY magic)');
  if (bytes[6] !== 1) throw new Error(`.npy version ${bytes[6]}.${bytes[7]}: only 1.0 is read`);
  const len = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + len).toString('latin1');
  const m = /'descr': '<f4', 'fortran_order': False, 'shape': \(([\d, ]*)\)/.exec(header);
  if (!m) throw new Error(`.npy header not a C-order float32 array: ${header.trim()}`);
  const shape = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = 10 + len;
  if (bytes.length !== body + 4 * count) throw new Error(`.npy body is ${bytes.length - body} bytes, the shape (${shape.join(', ')}) needs ${4 * count}`);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = bytes.readFloatLE(body + 4 * i);
  return { shape, values };
}
