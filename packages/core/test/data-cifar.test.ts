/** CIFAR-10's binary format: records, folders, errors, resizing for smaller presets. */
import test from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CIFAR_PIXELS,
  CIFAR_RECORD,
  DataError,
  cifarBinaryFiles,
  encodeCifarRecords,
  findCifarBinaryDir,
  loadCifarFiles,
  openDataset,
  openSet,
  parseCifarBatch,
  resizeAreaChw,
  statsOf,
} from '../src/data/index.js';
import { randomCifar, tempDir, writeCifarFolder } from './data-fixtures.js';

test('records: 1 label byte then the R, G and B planes of 32x32', (t) => {
  const buf = new Uint8Array(2 * CIFAR_RECORD);
  buf[0] = 7;
  buf[1] = 11; // R (0,0)
  buf[1 + 1023] = 12; // R (31,31)
  buf[1 + 1024] = 13; // G (0,0)
  buf[1 + 2048 + 33] = 14; // B (1,1)
  buf[CIFAR_RECORD] = 2;
  buf[CIFAR_RECORD + 1 + 3071] = 15; // image 1, B (31,31)
  const { pixels, labels } = parseCifarBatch(buf, 'mem');
  t.deepEqual([...labels], [7, 2]);
  t.is(pixels[0], 11);
  t.is(pixels[1023], 12);
  t.is(pixels[1024], 13);
  t.is(pixels[2048 + 32 + 1], 14);
  t.is(pixels[CIFAR_PIXELS + 3071], 15);
  t.deepEqual(encodeCifarRecords(pixels, labels), buf);
});

test('malformed batch files are DataErrors naming the file', (t) => {
  const e1 = t.throws(() => parseCifarBatch(new Uint8Array(3072), '/x/data_batch_1.bin'), { instanceOf: DataError });
  t.regex(e1.message, /\/x\/data_batch_1\.bin: 3072 bytes is not a whole number of CIFAR-10 records/);
  const bad = new Uint8Array(CIFAR_RECORD);
  bad[0] = 10;
  const e2 = t.throws(() => parseCifarBatch(bad, 'b.bin'), { instanceOf: DataError });
  t.regex(e2.message, /record 0 has label 10/);
});

test('a generated batches folder loads: train = data_batch_1..5 in order, test = test_batch', (t) => {
  const dir = join(tempDir(t), 'cifar-10-batches-bin');
  const { train, test: held } = writeCifarFolder(dir, 7);
  t.is(findCifarBinaryDir(dir), dir);
  t.is(findCifarBinaryDir(join(dir, '..')), dir, 'the archive folder holding cifar-10-batches-bin/ is found too');
  const files = cifarBinaryFiles(dir);
  const tr = loadCifarFiles(files.train);
  t.is(tr.count, 35);
  t.is(tr.size, 32);
  t.deepEqual(tr.pixels, train.pixels);
  t.deepEqual(tr.labels, train.labels);
  const te = loadCifarFiles(files.test);
  t.deepEqual(te.pixels, held.pixels);
  t.deepEqual(te.image(3), held.pixels.subarray(3 * CIFAR_PIXELS, 4 * CIFAR_PIXELS));

  rmSync(join(dir, 'data_batch_4.bin'));
  const e = t.throws(() => cifarBinaryFiles(dir), { instanceOf: DataError });
  t.regex(e.message, /lacks data_batch_4\.bin: expected data_batch_1\.bin \.\.\. data_batch_5\.bin and test_batch\.bin/);
});

test('--data DIR with CIFAR-10 batches: the data set, its statistics (cached), resized for a smaller input', async (t) => {
  const root = tempDir(t);
  const dir = join(root, 'cifar-10-batches-bin');
  writeCifarFolder(dir, 6);
  const cache = join(root, 'cache');
  const d = await openDataset(dir, { size: 32, cacheDir: cache });
  t.is(d.kind, 'cifar-binary');
  t.is(d.trainCount, 30);
  t.is(d.heldOutCount, 6);
  t.is(d.heldOutName, 'test');
  t.is(d.classes[9], 'truck');
  const set = openSet(d.train);
  const want = statsOf(set);
  t.deepEqual(d.stats, want);
  // uniform random pixels: mean 127.5, covariance (255^2/12)/255^2 = 1/12 on the diagonal
  for (const m of d.stats.mean) t.true(Math.abs(m - 127.5) < 3);
  t.true(Math.abs(d.stats.covariance[0]! - 1 / 12) < 0.005);
  // the second open reads the cached statistics
  writeFileSync(join(dir, 'unrelated.txt'), 'x');
  t.deepEqual((await openDataset(dir, { size: 32, cacheDir: cache })).stats, d.stats);
  // a 16x16 preset: area averaging of 2x2 blocks
  const small = openSet(d.train, 16);
  t.is(small.size, 16);
  const img = set.image(0).slice();
  const s = small.image(0);
  t.is(s[0], Math.round((img[0]! + img[1]! + img[32]! + img[33]!) / 4));
  t.is(s[256 + 16 + 1], Math.round((img[1024 + 66]! + img[1024 + 67]! + img[1024 + 98]! + img[1024 + 99]!) / 4));
});

test('area resize: constant images stay constant, any size to any size', (t) => {
  const { pixels } = randomCifar(1, 3);
  for (const to of [7, 16, 24, 32, 48]) {
    const out = resizeAreaChw(pixels, 3, 32, to);
    t.is(out.length, 3 * to * to);
  }
  const flat = new Uint8Array(3 * 32 * 32).fill(77);
  t.true(resizeAreaChw(flat, 3, 32, 13).every((v) => v === 77));
  t.true(resizeAreaChw(flat, 3, 32, 50).every((v) => v === 77));
});
