/**
 * The decoded cache file: a folder's images decoded once into one file of uint8 pixels, N x [3][size][size] plus
 * labels, so that training reads fixed-size records instead of decoding at every use (decoded-cache.ts makes it).
 *
 * File layout (little-endian):
 *   0      "AXNDEC01"                              magic, 8 bytes
 *   8      float64  offset of the JSON header
 *   16     uint32   length of the JSON header
 *   4096   images, N x 3 x size x size bytes, image i at 4096 + i * 3 * size^2
 *   ...    labels, N x uint32
 *   ...    JSON header: { version, count, size, classes, labelsOffset,
 *          imagesOffset, source, skipped: [{ path, message }] }
 *
 * The file is written under a temporary name (partial-decode.ts) and renamed when complete, so a crash never leaves a
 * half cache under the final name. Readers open the file per image with positioned reads (Node has no mmap); a cache
 * small enough (default up to 1 GiB) is read whole into memory instead.
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataError, cacheError, makeCacheDir, type DataWarning } from './errors.js';
import { MemorySet, type DecodedSet } from './decoded-set.js';
import { partialPath, removePartial } from './partial-decode.js';

const MAGIC = 'AXNDEC01';
const IMAGES_OFFSET = 4096;

/** The bytes of a cache file of `n` images at `size` (the layout above, its JSON header allowed for). */
export function cacheFileBytes(n: number, size: number): number {
  return IMAGES_OFFSET + n * (3 * size * size + 4) + 65_536;
}
/** The cache file format this build writes and reads (its header says which it is; part of the cache name's hash). */
export const CACHE_VERSION = 1;

export interface CacheHeader {
  readonly version: number;
  readonly count: number;
  readonly size: number;
  readonly classes: readonly string[];
  readonly labelsOffset: number;
  readonly imagesOffset: number;
  readonly source: string;
  readonly skipped: readonly DataWarning[];
}

/** The cache file's images are longer than a journal said: a file to start afresh. */
export class ShortPartialError extends Error {}

/** Appends decoded images to a new cache file (synchronous: meant for a worker thread), or on to a claimed partial one. */
export class CacheWriter {
  private readonly fd: number;
  private readonly labels: number[];
  /** The file being written: this process's partial name (partial-decode.ts). */
  readonly tmp: string;
  private offset: number;
  private readonly bytes: number;

  /**
   * `resume`: carry on in the claimed partial file `resume.partial`, which holds the images of `resume.labels`
   * (a ShortPartialError when it is shorter than that: the data the journal counted never reached the disk).
   */
  constructor(private readonly path: string, private readonly size: number, private readonly classes: readonly string[], resume?: { partial: string; labels: readonly number[] }) {
    makeCacheDir(dirname(path));
    this.tmp = resume?.partial ?? partialPath(path);
    this.bytes = 3 * size * size;
    this.labels = resume ? [...resume.labels] : [];
    this.offset = IMAGES_OFFSET + this.labels.length * this.bytes;
    try {
      // a new name of this process's own: never another writer's file
      this.fd = openSync(this.tmp, resume ? 'r+' : 'wx');
    } catch (e) {
      throw cacheError('write the cache file', this.tmp, e);
    }
    if (resume) {
      if (fstatSync(this.fd).size < this.offset) {
        closeSync(this.fd);
        throw new ShortPartialError(`${this.tmp} is shorter than its journal says`);
      }
      // a process killed after an image and before its journal left a little more: cut off
      ftruncateSync(this.fd, this.offset);
    }
  }

  /** Images in the file. */
  get written(): number {
    return this.labels.length;
  }

  append(chw: Uint8Array, label: number): void {
    if (chw.length !== this.bytes) throw new Error(`CacheWriter: image of ${chw.length} bytes, expected 3x${this.size}x${this.size}`);
    writeAll(this.fd, chw, this.offset);
    this.offset += chw.length;
    this.labels.push(label);
  }

  /**
   * The images written so far, on the disk (before a journal counts them); an Error when the file is no longer
   * under this writer's name (another process took it over, wrongly thinking this one gone): this writer stops.
   */
  flush(): void {
    fdatasyncSync(this.fd);
    this.checkOwn();
  }

  /** A DataError (TakenOver) when the file is no longer under this writer's name: another process took it over. */
  private checkOwn(): void {
    let ino: number | null = null;
    try {
      ino = statSync(this.tmp).ino;
    } catch (e) {
      // renamed away; any other failure (a flaky network file system) is not a take-over
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (ino !== fstatSync(this.fd).ino) throw new DataError(this.tmp, `${this.tmp} was taken over by another process, which thought this one gone: decode again (the other process goes on with it)`);
  }

  /** Whether the file is closed: renamed into place by finish(), or given up. */
  private closed = false;
  /** Whether finish() put the cache in place: nothing is left to keep or resume. */
  finished = false;

  /** Writes labels and header, flushes them to the disk and renames the file into place. */
  finish(source: string, skipped: readonly DataWarning[]): CacheHeader {
    this.checkOwn();
    const labels = Uint32Array.from(this.labels);
    const labelsOffset = this.offset;
    writeAll(this.fd, new Uint8Array(labels.buffer), labelsOffset);
    const header: CacheHeader = {
      version: CACHE_VERSION,
      count: labels.length,
      size: this.size,
      classes: this.classes,
      labelsOffset,
      imagesOffset: IMAGES_OFFSET,
      source,
      skipped,
    };
    const json = Buffer.from(JSON.stringify(header));
    const jsonOffset = labelsOffset + labels.byteLength;
    writeAll(this.fd, json, jsonOffset);
    const prefix = Buffer.alloc(20);
    prefix.write(MAGIC, 0, 'latin1');
    prefix.writeDoubleLE(jsonOffset, 8);
    prefix.writeUInt32LE(json.length, 16);
    writeAll(this.fd, prefix, 0);
    // whole on the disk before it is put in place: a crash never leaves a cache cut short under the final name
    fdatasyncSync(this.fd);
    this.closed = true;
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
    this.finished = true;
    removePartial(this.tmp);
    return header;
  }

  /** Stops writing: the partial file and its journal are kept for the next decoding to go on from, or removed. */
  abort(keep: boolean): void {
    if (!this.closed) {
      this.closed = true;
      closeSync(this.fd);
    }
    if (!keep && !this.finished) removePartial(this.tmp);
  }
}

/** writeSync until every byte is written (a short write, a nearly full disk, is not an image written). */
function writeAll(fd: number, bytes: Uint8Array, at: number): void {
  for (let o = 0; o < bytes.length; ) {
    const n = writeSync(fd, bytes, o, bytes.length - o, at + o);
    if (n <= 0) throw Object.assign(new Error('no space left on the device'), { code: 'ENOSPC' });
    o += n;
  }
}

/** Reads a cache file's header; a DataError when it is not one. */
export function readCacheHeader(path: string): CacheHeader {
  const fd = openSync(path, 'r');
  try {
    const prefix = Buffer.alloc(20);
    readSync(fd, prefix, 0, 20, 0);
    if (prefix.toString('latin1', 0, 8) !== MAGIC) throw new DataError(path, `${path} is not a decoded cache file (no ${MAGIC} magic)`);
    const jsonOffset = prefix.readDoubleLE(8);
    const jsonLength = prefix.readUInt32LE(16);
    const json = Buffer.alloc(jsonLength);
    readSync(fd, json, 0, jsonLength, jsonOffset);
    let h: CacheHeader;
    try {
      h = JSON.parse(json.toString('utf8')) as CacheHeader;
    } catch {
      throw new DataError(path, `${path} is damaged (its header does not read): remove it, and it is decoded again`);
    }
    if (h.version !== CACHE_VERSION) throw new DataError(path, `${path}: decoded cache version ${h.version}, this program reads version ${CACHE_VERSION}`);
    return h;
  } finally {
    closeSync(fd);
  }
}

/** A cache file read image by image with positioned reads. */
export class CacheFileSet implements DecodedSet {
  readonly count: number;
  readonly size: number;
  readonly classes: readonly string[];
  readonly labels: Uint32Array;
  private fd: number;
  private readonly buf: Uint8Array;
  private readonly bytes: number;

  constructor(readonly path: string, readonly header: CacheHeader) {
    this.count = header.count;
    this.size = header.size;
    this.classes = header.classes;
    this.bytes = 3 * this.size * this.size;
    this.buf = new Uint8Array(this.bytes);
    this.fd = openSync(path, 'r');
    const lab = Buffer.alloc(4 * this.count);
    readSync(this.fd, lab, 0, lab.length, header.labelsOffset);
    this.labels = new Uint32Array(lab.buffer.slice(lab.byteOffset, lab.byteOffset + lab.length));
  }

  image(i: number): Uint8Array {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`image ${i} of ${this.count}`);
    const got = readSync(this.fd, this.buf, 0, this.bytes, this.header.imagesOffset + i * this.bytes);
    if (got !== this.bytes) throw new DataError(this.path, `${this.path}: short read at image ${i} (file truncated?)`);
    return this.buf;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Opens a cache file: whole in memory when its images take at most `memoryLimit` bytes, else read per image. */
export function openCacheFile(path: string, memoryLimit = 1 << 30): DecodedSet {
  const h = readCacheHeader(path);
  const bytes = h.count * 3 * h.size * h.size;
  if (bytes > memoryLimit) return new CacheFileSet(path, h);
  const fd = openSync(path, 'r');
  try {
    const total = fstatSync(fd).size;
    if (total < h.labelsOffset + 4 * h.count) throw new DataError(path, `${path} is truncated`);
    const pixels = new Uint8Array(bytes);
    let o = 0;
    while (o < bytes) o += readSync(fd, pixels, o, Math.min(bytes - o, 1 << 28), h.imagesOffset + o);
    const lab = new Uint8Array(4 * h.count);
    readSync(fd, lab, 0, lab.length, h.labelsOffset);
    return new MemorySet(pixels, new Uint32Array(lab.buffer), h.size, h.classes);
  } finally {
    closeSync(fd);
  }
}
