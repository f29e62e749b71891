/** The decoded cache file, batches made in a worker thread, and the prefetch queue's wait measurement. */
import test from 'ava';
import { join } from 'node:path';
import { readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import {
  BatchMaker,
  BatchThread,
  CacheFileSet,
  CacheWriter,
  DataError,
  MemorySet,
  Prefetcher,
  cifarAugment,
  openDataset,
  openCacheFile,
  openSet,
  readCacheHeader,
  type ChannelStats,
} from '../src/data/index.js';
import { gradientImage, randomCifar, tempDir, writeCifarFolder, writeFile } from './data-fixtures.js';

const stats: ChannelStats = {
  images: 1,
  mean: [125, 123, 114],
  covariance: [],
  eigenvalues: [0.2, 0.02, 0.005],
  eigenvectors: [0.58, -0.7, 0.41, 0.58, 0, -0.82, 0.58, 0.7, 0.41],
};

test('cache file: written in order, read back whole or image by image', (t) => {
  const dir = tempDir(t);
  const { pixels, labels } = randomCifar(9, 4);
  const path = join(dir, 'c.u8');
  const w = new CacheWriter(path, 32, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
  for (let i = 0; i < 9; i++) w.append(pixels.subarray(i * 3072, (i + 1) * 3072), labels[i]!);
  const h = w.finish('/src', [{ path: '/src/x.jpg', message: 'bad (skipped)' }]);
  t.is(h.count, 9);
  t.deepEqual(readCacheHeader(path), h);
  const mem = openCacheFile(path);
  t.true(mem instanceof MemorySet);
  t.deepEqual((mem as MemorySet).pixels, pixels);
  t.deepEqual(mem.labels, labels);
  const perImage = openCacheFile(path, 0);
  t.true(perImage instanceof CacheFileSet);
  for (const i of [8, 0, 4]) t.deepEqual(perImage.image(i), pixels.subarray(i * 3072, (i + 1) * 3072));
  t.deepEqual(perImage.labels, labels);
  perImage.close?.();
  writeFileSync(join(dir, 'not.u8'), 'hello world, not a cache file');
  t.throws(() => readCacheHeader(join(dir, 'not.u8')), { instanceOf: DataError, message: /not a decoded cache file/ });
});

test('batches made in a worker thread equal those made here, buffers transferred', async (t) => {
  const dir = join(tempDir(t), 'bin');
  writeCifarFolder(dir, 8);
  const ref = { kind: 'cifar-bin' as const, files: [1, 2, 3, 4, 5].map((b) => join(dir, `data_batch_${b}.bin`)), classes: [] };
  const heldOut = { kind: 'cifar-bin' as const, files: [join(dir, 'test_batch.bin')], classes: [] };
  const opts = { seed: 3, augment: cifarAugment(), stats };
  const th = new BatchThread({ train: ref, heldOut, size: 32, maker: opts });
  t.teardown(() => th.close());
  const here = new BatchMaker(openSet(ref), opts);
  const [a, b] = await Promise.all([th.u8(5, 16), th.f32(5, 16)]);
  t.deepEqual(a, here.u8(5, 16));
  t.deepEqual(b, here.f32(5, 16));
  const ev = await th.evalU8(2, 3, 28, 'ten');
  t.is(ev.views, 10);
  t.is(ev.images.length, 3 * 30 * 28 * 28);
  // a 16x16 preset: resized in the thread
  const small = new BatchThread({ train: ref, size: 16, maker: { ...opts, augment: cifarAugment(16) } });
  t.teardown(() => small.close());
  t.is((await small.u8(0, 4)).images.length, 3 * 4 * 16 * 16);
  // an error in the thread comes back as a rejection; the thread lives on
  const broken = new BatchThread({ train: { kind: 'cifar-bin', files: [join(dir, 'missing.bin')], classes: [] }, size: 32, maker: opts });
  t.teardown(() => broken.close());
  await t.throwsAsync(broken.u8(0, 4), { instanceOf: DataError, message: /missing\.bin/ });
  await t.throwsAsync(th.evalU8(0, 1, 40, 'centre'));
  t.is((await th.u8(0, 2)).labels.length, 2);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('prefetch: items come in order, the next ones are made ahead, and the wait share is measured', async (t) => {
  // a slow producer (40 ms) and a fast consumer: the consumer mostly waits
  const made: number[] = [];
  const slow = new Prefetcher(async (k) => {
    made.push(k);
    await sleep(40);
    return k;
  }, 2);
  for (let k = 0; k < 6; k++) t.is(await slow.get(k), k);
  t.deepEqual(made.slice(0, 3), [0, 1, 2], 'k+1 and k+2 requested with k');
  const s1 = slow.stats();
  t.is(s1.items, 6);
  t.true(s1.waitShare > 0.6, `slow producer: waited ${(100 * s1.waitShare).toFixed(0)}%`);

  // a fast producer (5 ms) and a slow consumer (200 ms a step): after the first item, no waiting (a step long
  // enough that a late timer on a loaded machine is a small share of it)
  const fast = new Prefetcher(async (k) => {
    await sleep(5);
    return k;
  }, 2);
  for (let k = 0; k < 6; k++) {
    t.is(await fast.get(k), k);
    await sleep(200);
  }
  const s2 = fast.stats();
  t.true(s2.waitShare < 0.15, `fast producer: waited ${(100 * s2.waitShare).toFixed(0)}%`);

  // a jump (resume at another step) and a failing item
  const p = new Prefetcher(async (k) => {
    if (k === 11) throw new Error('eleven');
    return k * 2;
  }, 1);
  t.is(await p.get(10), 20);
  await t.throwsAsync(p.get(11), { message: 'eleven' });
  t.is(await p.get(3), 6);
  p.clear();
});

test('the decoded cache is keyed by the folder\'s real path and contents: the same folder through a symlink or a/../b is not decoded again; changed contents are', async (t) => {
  const root = tempDir(t);
  const cache = tempDir(t);
  const folder = join(root, 'real', 'pics');
  writeFile(join(folder, 'train', 'a', '0.jpg'), await gradientImage(20, 20, [200, 120, 40], 'jpeg'));
  writeFile(join(folder, 'train', 'b', '0.png'), await gradientImage(20, 20, [10, 20, 250], 'png'));
  writeFile(join(folder, 'val', 'a', '0.jpg'), await gradientImage(20, 20, [200, 120, 40], 'jpeg'));
  symlinkSync(join(root, 'real'), join(root, 'link'), 'dir');
  const open = async (data: string) => {
    const logs: string[] = [];
    const d = await openDataset(data, { size: 8, cacheDir: cache, log: (l) => logs.push(l) });
    return { d, decoded: logs.filter((l) => l.startsWith('decoding ')).length };
  };
  const first = await open(folder);
  t.is(first.decoded, 2, 'training and validation decoded once');
  const caches = () => readdirSync(join(cache, 'decoded')).filter((f) => f.endsWith('.u8')).sort();
  const names = caches();
  t.is(names.length, 2);
  // through a symlink to a folder above it, and through a/../b: the same cache files, nothing decoded
  for (const other of [join(root, 'link', 'pics'), join(root, 'link', 'pics', 'train', '..'), `${root}/real/../link/pics`]) {
    const again = await open(other);
    t.is(again.decoded, 0, other);
    t.deepEqual(again.d.train, first.d.train, other);
    t.deepEqual(again.d.heldOut, first.d.heldOut, other);
  }
  t.deepEqual(caches(), names);
  // changed contents (a file's modification time): decoded anew
  utimesSync(join(folder, 'train', 'a', '0.jpg'), new Date(2020, 0, 1), new Date(2020, 0, 1));
  t.is((await open(join(root, 'link', 'pics'))).decoded, 1, 'the training split again; validation unchanged');
  t.is(caches().length, 3);
});
