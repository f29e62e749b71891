/** FolderSource's held-out evaluation when limited: evenly spaced over the split (whose folders come in class order). */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getPreset } from '@alexnet-mp/core';
import { gradientImage, writeFile } from '../../core/test/data-fixtures.js';
import { FolderSource, problemsInWords } from '../src/folder-source.js';

test('a limited held-out evaluation takes evenly spaced images of the split, not the first class only', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-heldout-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const colours: [number, number, number][] = [[250, 40, 40], [40, 250, 40], [40, 40, 250], [230, 230, 40]];
  for (const [c, rgb] of colours.entries()) {
    writeFile(path.join(root, 'train', `c${c}`, '0.png'), await gradientImage(16, 16, rgb, 'png'));
    for (let i = 0; i < 2; i++) writeFile(path.join(root, 'val', `c${c}`, `${i}.png`), await gradientImage(16 + 4 * i, 16, rgb, 'png'));
  }
  const src = await FolderSource.open({ data: root, spec: getPreset('tiny'), seed: 1, cacheDir: path.join(root, 'cache') });
  t.teardown(() => src.close());
  // the workers are sent the training split's per-channel mean (red, green, blue, yellow images: red highest)
  t.deepEqual(src.inputMean, src.dataset.stats.mean);
  t.true(src.inputMean[0]! > src.inputMean[2]! && src.inputMean.every((m) => m > 0 && m < 255), `${src.inputMean}`);
  const all = [];
  for await (const b of src.heldOut(8).batches()) all.push(b);
  t.deepEqual([...all[0]!.labels], [0, 0, 1, 1, 2, 2, 3, 3]);
  const limited = src.heldOut(3, 4);
  t.regex(limited.description, /4 val images .*\(evenly spaced\)/);
  const got = [];
  for await (const b of limited.batches()) got.push(b);
  t.deepEqual(got.map((b) => [...b.labels]), [[0, 1, 2], [3]]);
  // CNHW: image k of the limited set is image 2k of the split
  const plane = 16 * 16;
  for (let c = 0; c < 3; c++) {
    for (const [slot, k] of [[0, 0], [1, 1], [2, 2]] as const) {
      t.deepEqual(got[0]!.images.subarray((c * 3 + slot) * plane, (c * 3 + slot + 1) * plane), all[0]!.images.subarray((c * 8 + 2 * k) * plane, (c * 8 + 2 * k + 1) * plane));
    }
  }
});

test('a folder with fewer classes than the preset has outputs is said to take the first ones; more is refused', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-fewer-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  for (const [c, rgb] of ([[250, 40, 40], [40, 250, 40]] as [number, number, number][]).entries()) {
    writeFile(path.join(root, 'train', `c${c}`, '0.png'), await gradientImage(16, 16, rgb, 'png'));
    writeFile(path.join(root, 'val', `c${c}`, '0.png'), await gradientImage(16, 16, rgb, 'png'));
  }
  const said: string[] = [];
  const src = await FolderSource.open({ data: root, spec: getPreset('tiny'), seed: 1, cacheDir: path.join(root, 'cache'), info: (l) => said.push(l) });
  t.teardown(() => src.close());
  t.true(said.includes(`${root} has 2 classes: they take the first 2 of preset tiny's 4 outputs (the others are never a label)`), said.join('\n'));
  for (let c = 2; c < 5; c++) writeFile(path.join(root, 'train', `c${c}`, '0.png'), await gradientImage(16, 16, [100, 100, 100], 'png'));
  await t.throwsAsync(FolderSource.open({ data: root, spec: getPreset('tiny'), seed: 1, cacheDir: path.join(root, 'cache2') }), { message: /has 5 classes but preset tiny has 4 outputs/ });
});

test('a folder of one class is warned about: every image has the same label', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-one-class-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  writeFile(path.join(root, 'train', 'cat', '0.png'), await gradientImage(16, 16, [250, 40, 40], 'png'));
  writeFile(path.join(root, 'val', 'cat', '0.png'), await gradientImage(16, 16, [250, 40, 40], 'png'));
  const said: string[] = [];
  const src = await FolderSource.open({ data: root, spec: getPreset('tiny'), seed: 1, cacheDir: path.join(root, 'cache'), info: (l) => said.push(l) });
  t.teardown(() => src.close());
  t.true(said.includes(`warning: ${root} has 1 class (cat): every image has the same label, so there is nothing to tell apart; give a folder of two or more class folders`), said.join('\n'));
  t.regex(src.dataset.description, /, 1 class, decoded at 16x16/);
});

test('a data set\'s problems: a class never trained on first, five named, the rest counted by what is wrong', (t) => {
  const bad = (i: number, m = 'VipsJpeg: premature end of JPEG image (skipped)') => ({ path: `/d/train/a/${i}.jpg`, message: m });
  const warnings = [
    ...Array.from({ length: 8 }, (_, i) => bad(i)),
    bad(8, 'Input file contains unsupported image format (skipped)'),
    { path: '/d/train/cat', message: "none of the class's 9 training images could be read: class cat is never trained on" },
  ];
  t.is(
    problemsInWords(warnings, '/d'),
    [
      '10 problems in /d:',
      "  /d/train/cat: none of the class's 9 training images could be read: class cat is never trained on",
      ...[0, 1, 2, 3].map((i) => `  /d/train/a/${i}.jpg: VipsJpeg: premature end of JPEG image (skipped)`),
      '  ... and 5 more: 4 "VipsJpeg: premature end of JPEG image (skipped)"; 1 "Input file contains unsupported image format (skipped)"',
    ].join('\n'),
  );
  t.is(problemsInWords([bad(0)], '/d'), '1 problem in /d:\n  /d/train/a/0.jpg: VipsJpeg: premature end of JPEG image (skipped)');
  const many = ['a', 'b', 'c', 'd', 'e'].flatMap((k) => Array.from({ length: 2 }, (_, i) => bad(i, `${k} (skipped)`)));
  t.regex(problemsInWords(many, '/d'), /\.\.\. and 5 more: 2 "d \(skipped\)"; 2 "e \(skipped\)"; 1 "c \(skipped\)"$/);
  const kinds = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((k, i) => bad(i, `${k} (skipped)`));
  t.regex(problemsInWords(kinds, '/d'), /\.\.\. and 4 more: 1 "f \(skipped\)"; 1 "g \(skipped\)"; 1 "h \(skipped\)"; 1 of other kinds$/);
});
