/** The coordinator's FolderSource (packages/coordinator/src/folder-source.ts) over generated CIFAR-10 batches. */
import test from 'ava';
import { join } from 'node:path';
import { getPreset } from '../src/model/presets.js';
import { DataError } from '../src/data/index.js';
import { FolderSource } from '../../coordinator/src/folder-source.js';
import { tempDir, writeCifarFolder } from './data-fixtures.js';

test('FolderSource: uint8 CNHW batches, labels in range, deterministic per (seed, step, size), epochs cover the set', async (t) => {
  const root = tempDir(t);
  const { test: testSplit } = writeCifarFolder(join(root, 'cifar-10-batches-bin'), 10);
  const spec = getPreset('cifar');
  const lines: string[] = [];
  const src = await FolderSource.open({ data: root, spec, seed: 1, cacheDir: join(root, 'cache'), info: (l) => lines.push(l) });
  t.teardown(() => src.close());
  t.regex(src.description, /CIFAR-10 binary .*50 training and 10 test images, 10 classes; random 32x32 crops of the 4-pixel zero-padded 32x32, flips, PCA colour noise \(std 0\.1\), seed 1/);
  t.is(src.imagesPerEpoch, 50);
  const batches = [];
  for (let s = 0; s < 5; s++) batches.push(await src.batch(s, 10));
  for (const b of batches) {
    t.is(b.images.length, 3 * 10 * 32 * 32);
    t.is(b.labels.length, 10);
    t.true([...b.labels].every((l) => l < 10));
    t.is(b.shifts.length, 30);
  }
  // steps 0..4 of 10 images are epoch 0: every image once
  t.deepEqual(batches.flatMap((b) => [...b.indices]).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  t.deepEqual([...(await src.batch(5, 10)).epochs], new Array(10).fill(1));
  const other = await FolderSource.open({ data: root, spec, seed: 1, cacheDir: join(root, 'cache') });
  t.teardown(() => other.close());
  t.deepEqual(await other.batch(3, 10), batches[3]);
  const w = src.dataWait();
  t.is(w.items, 6);
  t.true(w.waitShare >= 0 && w.waitShare <= 1);

  // the held-out split: centre crops in order, the last batch shorter
  const held = src.heldOut(4, 10);
  t.is(held.images, 10);
  t.regex(held.description, /10 test images of .*, centre 32x32 crops, batches of 4/);
  const hb = [];
  for await (const b of held.batches()) hb.push(b);
  t.deepEqual(hb.map((b) => b.labels.length), [4, 4, 2]);
  t.deepEqual(hb.flatMap((b) => [...b.labels]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.is(hb[0]!.images.length, 3 * 4 * 32 * 32);
  for (const [c, p] of [[0, 0], [1, 517], [2, 1023]] as const) t.is(hb[1]!.images[(c * 4 + 2) * 1024 + p], testSplit.pixels[6 * 3072 + c * 1024 + p], 'CNHW, image 6 = batch 1 slot 2');
  t.is(src.heldOut(8).images, 10);

  // too many classes for the preset
  await t.throwsAsync(FolderSource.open({ data: root, spec: getPreset('tiny'), seed: 1, cacheDir: join(root, 'cache') }), {
    instanceOf: DataError,
    message: /has 10 classes but preset tiny has 4 outputs/,
  });
});
