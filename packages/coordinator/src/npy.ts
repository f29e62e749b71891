/**
 * NumPy's .npy format (version 1.0) for float32 and int32 arrays: what `numpy.load` reads, with no Python
 * needed to write it. A file is the magic "\x93NUMPY", the version (1, 0), a little-endian u16 header length,
 * the header (a Python dict literal: dtype '<f4' or '<i4', C order, the shape) padded with spaces to a 64-byte boundary
 * and ending in a newline, then the values, little-endian, row-major.
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */

import fs from 'node:fs';
import { fileError, tempBeside } from '@alexnet-mp/core';
import { removeOnSignal } from './temp-files.js';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** Float32Array is stored as '<f4', Int32Array as '<i4'. */
type NpyArray = Float32Array | Int32Array;
const descrOf = (a: NpyArray) => (a instanceof Float32Array ? '<f4' : '<i4');

/** The preamble and header of an array of `shape`, padded to a multiple of `align` bytes (64, or more to leave room). */
function npyHeader(shape: readonly number[], descr: string, align = 64): Buffer {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`npy: shape (${shape.join(', ')}) is not whole numbers >= 0`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  // magic (6) + version (2) + header length (2) + header, a multiple of `align`, the header ending in '\n'
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((align - (unpadded % align)) % align) + '\n';
  if (header.length > 0xffff) throw new Error(`npy: a header of ${header.length} bytes needs format 2.0`);
  const out = Buffer.alloc(10 + header.length);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  return out;
}

/** The values' bytes, little-endian. */
function npyBody(values: NpyArray): Buffer {
  const out = Buffer.alloc(values.length * 4);
  if (values instanceof Float32Array) for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, 4 * i);
  else for (let i = 0; i < values.length; i++) out.writeInt32LE(values[i]!, 4 * i);
  return out;
}

/** The .npy bytes of `values` (float32 or int32) as an array of `shape` (row-major; the product of shape must be its length). */
export function encodeNpy(values: NpyArray, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== values.length) throw new Error(`encodeNpy: shape (${shape.join(', ')}) does not hold ${values.length} values`);
  return Buffer.concat([npyHeader(shape, descrOf(values)), npyBody(values)]);
}

/** Room for the header of any row count: the header is written last, once the rows are counted. */
const STREAM_HEADER = 128;

/**
 * A float32 .npy file of rows of `rowShape` written as they come, the row count unknown until the end: the
 * header's room is kept and filled by close(). The rows go to a temporary file beside `file`, renamed to it
 * by close(): a run that fails (or is stopped) leaves `file` as it was. A file that cannot be written is a
 * FileError naming it.
 */
export class NpyRowWriter {
  private fd: number;
  private rows = 0;
  private readonly rowLength: number;
  private readonly tmp: string;
  /** Stops removing the temporary file on a signal (temp-files.ts). */
  private readonly kept: () => void;

  constructor(
    readonly file: string,
    private readonly rowShape: readonly number[],
  ) {
    this.rowLength = rowShape.reduce((a, b) => a * b, 1);
    this.tmp = tempBeside(file);
    this.kept = removeOnSignal(this.tmp);
    try {
      this.fd = fs.openSync(this.tmp, 'w');
      fs.writeSync(this.fd, Buffer.alloc(STREAM_HEADER, 0x20));
    } catch (e) {
      this.kept();
      fs.rmSync(this.tmp, { force: true });
      throw fileError('write', file, e);
    }
  }

  /** Appends whole rows (a multiple of the row's length). */
  append(values: Float32Array): void {
    if (values.length % this.rowLength !== 0) throw new Error(`npy: ${values.length} values are not whole rows of ${this.rowLength}`);
    try {
      fs.writeSync(this.fd, npyBody(values));
    } catch (e) {
      throw fileError('write', this.file, e);
    }
    this.rows += values.length / this.rowLength;
  }

  /** Writes the header ([rows, ...rowShape]) and closes the file; returns the shape. */
  close(): number[] {
    const shape = [this.rows, ...this.rowShape];
    const header = npyHeader(shape, '<f4', STREAM_HEADER);
    if (header.length !== STREAM_HEADER) throw new Error(`npy: the header of (${shape.join(', ')}) does not fit ${STREAM_HEADER} bytes`);
    try {
      fs.writeSync(this.fd, header, 0, header.length, 0);
      fs.closeSync(this.fd);
      fs.renameSync(this.tmp, this.file);
    } catch (e) {
      this.abandon();
      throw fileError('write', this.file, e);
    }
    this.kept();
    return shape;
  }

  /** Closes and removes the temporary file (after an error): `file` stays as it was. */
  abandon(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.tmp, { force: true });
    this.kept();
  }
}

/** A .npy file's header: its dtype, shape and where its values start; an Error naming what differs from what encodeNpy writes. */
export function parseNpyHeader(bytes: Buffer): { descr: '<f4' | '<i4'; shape: number[]; body: number } {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) throw new Error('not a .npy file (no \\x93NUMPY magic)');
  if (bytes[6] !== 1) throw new Error(`.npy version ${bytes[6]}.${bytes[7]}: only 1.0 is read`);
  const len = bytes.readUInt16LE(8);
  if (bytes.length < 10 + len) throw new Error('.npy header cut short');
  const header = bytes.subarray(10, 10 + len).toString('latin1');
  const m = /'descr': '(<f4|<i4)', 'fortran_order': False, 'shape': \(([\d, ]*)\)/.exec(header);
  if (!m) throw new Error(`.npy header not a C-order float32 or int32 array: ${header.trim()}`);
  const shape = m[2]!.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  return { descr: m[1] as '<f4' | '<i4', shape, body: 10 + len };
}

/** The shape and values of a float32 or int32 .npy file (version 1.0, C order) as encodeNpy writes it; an Error naming what differs. */
export function decodeNpy(bytes: Buffer): { shape: number[]; values: Float32Array | Int32Array } {
  const { descr, shape, body } = parseNpyHeader(bytes);
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== body + 4 * count) throw new Error(`.npy body is ${bytes.length - body} bytes, the shape (${shape.join(', ')}) needs ${4 * count}`);
  const values = descr === '<f4' ? new Float32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) values[i] = descr === '<f4' ? bytes.readFloatLE(body + 4 * i) : bytes.readInt32LE(body + 4 * i);
  return { shape, values };
}
