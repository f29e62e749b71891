/** Fixtures for the data tests: temporary folders, generated CIFAR-10 batch files and small image folders. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import sharp from 'sharp';
import { Rng } from '../src/random.js';
import { CIFAR10_CLASSES, CIFAR_PIXELS, encodeCifarRecords } from '../src/data/index.js';

/** The repository's root (this file is packages/core/test/data-fixtures.ts). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** ../shared/datasets beside the repository (never copied into it). */
export const sharedDatasets = join(repoRoot, '..', 'shared', 'datasets');

export function tempDir(t: ExecutionContext, prefix = 'alexnet-data-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Random CHW images and labels 0..9. */
export function randomCifar(n: number, seed: number): { pixels: Uint8Array; labels: Uint32Array } {
  const r = new Rng(seed);
  const pixels = new Uint8Array(n * CIFAR_PIXELS);
  for (let i = 0; i < pixels.length; i++) pixels[i] = r.int(256);
  const labels = Uint32Array.from({ length: n }, (_, i) => i % 10);
  return { pixels, labels };
}

/**
 * A cifar-10-batches-bin folder: data_batch_1..5 with `perBatch` records each,
 * test_batch with `perBatch`, batches.meta.txt. Returns the concatenated
 * training and test data.
 */
export function writeCifarFolder(dir: string, perBatch: number, seed = 1): { train: ReturnType<typeof randomCifar>; test: ReturnType<typeof randomCifar> } {
  mkdirSync(dir, { recursive: true });
  const train = randomCifar(5 * perBatch, seed);
  const test = randomCifar(perBatch, seed + 100);
  for (let b = 0; b < 5; b++) {
    const s = b * perBatch;
    writeFileSync(
      join(dir, `data_batch_${b + 1}.bin`),
      encodeCifarRecords(train.pixels.subarray(s * CIFAR_PIXELS, (s + perBatch) * CIFAR_PIXELS), train.labels.subarray(s, s + perBatch)),
    );
  }
  writeFileSync(join(dir, 'test_batch.bin'), encodeCifarRecords(test.pixels, test.labels));
  writeFileSync(join(dir, 'batches.meta.txt'), CIFAR10_CLASSES.join('\n') + '\n\n');
  return { train, test };
}

/** A w x h RGB image of a horizontal gradient in one colour, encoded. */
export async function gradientImage(w: number, h: number, rgb: [number, number, number], format: 'jpeg' | 'png'): Promise<Buffer> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const k = 0.5 + (0.5 * x) / Math.max(1, w - 1);
      for (let c = 0; c < 3; c++) raw[(y * w + x) * 3 + c] = Math.round(rgb[c]! * k);
    }
  }
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  return format === 'jpeg' ? img.jpeg({ quality: 95 }).toBuffer() : img.png().toBuffer();
}

export function writeFile(path: string, data: Uint8Array | string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  return path;
}
