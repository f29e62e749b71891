/**
 * CIFAR-10's binary release (cifar-10-batches-bin/): data_batch_1.bin ...
 * data_batch_5.bin (10,000 images each, the training set) and test_batch.bin,
 * each a sequence of 3073-byte records: one label byte (0..9), then 3072
 * pixel bytes, the 1024 red values of the 32x32 image row by row, then the
 * green, then the blue. That is already CHW, the layout of a DecodedSet.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError } from './errors.js';
import { MemorySet } from './decoded-set.js';

export const CIFAR_SIZE = 32;
export const CIFAR_PIXELS = 3 * CIFAR_SIZE * CIFAR_SIZE;
export const CIFAR_RECORD = 1 + CIFAR_PIXELS;
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'] as const;
export const CIFAR10_TEST_FILES = ['test_batch.bin'] as const;

/** Parses one batch file's bytes; `path` is for error messages. */
export function parseCifarBatch(buf: Uint8Array, path: string, classes = 10): { pixels: Uint8Array; labels: Uint32Array } {
  if (buf.length === 0 || buf.length % CIFAR_RECORD !== 0) {
    throw new DataError(path, `${path}: ${buf.length} bytes is not a whole number of CIFAR-10 records (1 label byte + 3072 pixel bytes = 3073 bytes each)`);
  }
  const n = buf.length / CIFAR_RECORD;
  const pixels = new Uint8Array(n * CIFAR_PIXELS);
  const labels = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * CIFAR_RECORD;
    const label = buf[o]!;
    if (label >= classes) throw new DataError(path, `${path}: record ${i} has label ${label}, expected 0..${classes - 1} (is this CIFAR-100? only CIFAR-10's format is read)`);
    labels[i] = label;
    pixels.set(buf.subarray(o + 1, o + CIFAR_RECORD), i * CIFAR_PIXELS);
  }
  return { pixels, labels };
}

/** Records from CHW images and labels (the inverse of parseCifarBatch; tests write files with it). */
export function encodeCifarRecords(pixels: Uint8Array, labels: ArrayLike<number>): Uint8Array {
  const n = labels.length;
  if (pixels.length !== n * CIFAR_PIXELS) throw new Error(`encodeCifarRecords: ${pixels.length} bytes for ${n} images`);
  const out = new Uint8Array(n * CIFAR_RECORD);
  for (let i = 0; i < n; i++) {
    out[i * CIFAR_RECORD] = labels[i]!;
    out.set(pixels.subarray(i * CIFAR_PIXELS, (i + 1) * CIFAR_PIXELS), i * CIFAR_RECORD + 1);
  }
  return out;
}

/**
 * The folder holding the batch files: `dir` itself, or its
 * `cifar-10-batches-bin/` (the archive's top folder); null when neither.
 */
export function findCifarBinaryDir(dir: string): string | null {
  for (const d of [resolve(dir), join(resolve(dir), 'cifar-10-batches-bin')]) {
    if (existsSync(join(d, 'data_batch_1.bin')) || existsSync(join(d, 'test_batch.bin'))) return d;
  }
  return null;
}

/** Class names from batches.meta.txt when present (one per line), else CIFAR-10's. */
export function cifarClassNames(dir: string): string[] {
  const meta = join(dir, 'batches.meta.txt');
  if (existsSync(meta)) {
    const names = readFileSync(meta, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    if (names.length === 10) return names;
  }
  return [...CIFAR10_CLASSES];
}

/** The train and test file paths of a batches folder; a DataError naming what is missing. */
export function cifarBinaryFiles(dir: string): { train: string[]; test: string[] } {
  const abs = resolve(dir);
  const want = [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES];
  const missing = want.filter((f) => !existsSync(join(abs, f)) || !statSync(join(abs, f)).isFile());
  if (missing.length > 0) {
    throw new DataError(abs, `CIFAR-10 binary folder ${abs} lacks ${missing.join(', ')}: expected data_batch_1.bin ... data_batch_5.bin and test_batch.bin`);
  }
  return { train: CIFAR10_TRAIN_FILES.map((f) => join(abs, f)), test: CIFAR10_TEST_FILES.map((f) => join(abs, f)) };
}

/** Reads and concatenates batch files into one in-memory set. */
export function loadCifarFiles(files: readonly string[], classes: readonly string[] = CIFAR10_CLASSES): MemorySet {
  const parts = files.map((f) => {
    let buf: Buffer;
    try {
      buf = readFileSync(f);
    } catch (e) {
      throw new DataError(f, `cannot read CIFAR-10 batch ${f}: ${(e as Error).message}`, { cause: e });
    }
    return parseCifarBatch(buf, f, classes.length);
  });
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const pixels = new Uint8Array(n * CIFAR_PIXELS);
  const labels = new Uint32Array(n);
  let o = 0;
  for (const p of parts) {
    pixels.set(p.pixels, o * CIFAR_PIXELS);
    labels.set(p.labels, o);
    o += p.labels.length;
  }
  return new MemorySet(pixels, labels, CIFAR_SIZE, classes);
}
