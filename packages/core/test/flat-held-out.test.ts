/**
 * A held-out split in one flat folder with a labels file (ILSVRC-2012's validation set as it comes): the
 * formats label-file.ts reads, the errors it gives, and a real ImageNet layout built from imagenette-mini's
 * val/ (which holds ILSVRC2012_val_*.JPEG files) taken as the class-folder layout takes it.
 */
import test from 'ava';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, listImageFolder, openDataset, openSet, parseLabelFile } from '../src/data/index.js';
import { gradientImage, sharedDatasets, tempDir, writeFile } from './data-fixtures.js';

const classes = ['n01440764', 'n02102040', 'n02979186'];

test('labels files: FILE CLASS lines by name or number, with or without extension, a header; Kaggle LOC_val_solution.csv', (t) => {
  const plain = parseLabelFile('file,label\na.JPEG,n02102040\n\n# a comment\nb n02979186 extra\nc.jpg\t0\n', 'labels.csv', classes);
  t.is(plain.count, 3);
  t.is(plain.labelOf('a.JPEG'), 1);
  t.is(plain.labelOf('b.png'), 2, 'a name without extension matches any extension');
  t.is(plain.labelOf('c.jpg'), 0);
  t.is(plain.labelOf('d.jpg'), undefined);
  // Caffe's val.txt: paths and class numbers
  const caffe = parseLabelFile('val/ILSVRC2012_val_00000001.JPEG 2\r\nval/ILSVRC2012_val_00000002.JPEG 0\r\n', 'val.txt', classes);
  t.is(caffe.labelOf('ILSVRC2012_val_00000001.JPEG'), 2);
  t.is(caffe.labelOf('ILSVRC2012_val_00000002.JPEG'), 0);
  const kaggle = parseLabelFile('ImageId,PredictionString\nILSVRC2012_val_00008726,n02102040 255 142 454 329 n02102040 44 21 322 295\nILSVRC2012_val_00000001,n01440764 1 2 3 4\n', 'LOC_val_solution.csv', classes);
  t.is(kaggle.count, 2);
  t.is(kaggle.labelOf('ILSVRC2012_val_00008726.JPEG'), 1);
  t.is(kaggle.labelOf('ILSVRC2012_val_00000001.JPEG'), 0);
  // one stem, two classes: the stem alone names neither
  const twin = parseLabelFile('x.jpg 0\nx.png 1\n', 'l.txt', classes);
  t.is(twin.labelOf('x.png'), 1);
  t.is(twin.labelOf('x.jpeg'), undefined);
});

test('labels files: each mistake is a DataError naming the file and line; a class is checked for the images the folder holds', (t) => {
  const bad = (text: string) => t.throws(() => parseLabelFile(text, 'L', classes), { instanceOf: DataError })!.message;
  // read when an image of the folder asks for its class
  const badFor = (text: string, name: string) => t.throws(() => parseLabelFile(text, 'L', classes).labelOf(name), { instanceOf: DataError })!.message;
  t.regex(bad(''), /^the labels file L is empty/);
  t.regex(badFor('a.jpg n01440764\nb.jpg n09999999\n', 'b.jpg'), /^L:2: class "n09999999" is not among the training split's 3 class folders/);
  t.regex(badFor('a.jpg 3\n', 'a.jpg'), /^L:1: class number 3 is past the training split's 3 classes/);
  t.regex(badFor('a.jpg 0\na.jpg 1\n', 'a.jpg'), /^L:2: a\.jpg is given class n02102040 here and n01440764 on line 1/);
  // the whole validation set's file for a folder of a few of its classes: the other classes' lines are never read
  const subset = parseLabelFile('ImageId,PredictionString\nILSVRC2012_val_00000001,n09999999 1 2 3 4\nILSVRC2012_val_00000002,n01440764 1 2 3 4\n', 'L', classes);
  t.is(subset.labelOf('ILSVRC2012_val_00000002.JPEG'), 0);
  // one file given its class twice, by name and by number: the same class
  t.is(parseLabelFile('a.jpg n02102040\na.jpg 1\n', 'L', classes).labelOf('a.jpg'), 1);
  // every line of a file must agree, however they are spelt or ordered
  t.regex(badFor('a.jpg n01440764\na.jpg n02102040\na.jpg n01440764\n', 'a.jpg'), /^L:2: a\.jpg is given class n02102040 here and n01440764 on line 1/);
  t.regex(badFor('a.jpg n01440764\na.jpg 0\na.jpg n02102040\n', 'a.jpg'), /^L:3: a\.jpg is given class n02102040 here and n01440764 on line 1/);
  // two files of one stem, one class by name and by number: the stem names it
  t.is(parseLabelFile('x.jpg n01440764\nx.png 0\n', 'L', classes).labelOf('x.JPEG'), 0);
  // lines naming a file without its extension that disagree: the lines named, as for whole names (Kaggle's ids)
  t.regex(badFor('ImageId,PredictionString\nv1,n01440764 1 2 3 4\nv1,n02102040 1 2 3 4\n', 'v1.JPEG'), /^L:3: v1\.JPEG is given class n02102040 here and n01440764 on line 2/);
  t.regex(badFor('v1 0\nv1 2\n', 'v1.png'), /^L:2: v1\.png is given class n02979186 here and n01440764 on line 1/);
  // class folders named by numbers that are not their sorted places: a file of numbers does not say which it means
  const numbered = ['1', '2', '3'];
  const mixed = 'a.jpg 0\nb.jpg 1\nc.jpg 2\n';
  t.throws(() => parseLabelFile(mixed, 'L', numbered).labelOf('b.jpg'), {
    instanceOf: DataError,
    message: /^L:2: class "1" is both a class folder's name and a class number, which count from 0 in the folders' sorted order \(number 1 is folder "2"\); not every line names a class folder/,
  });
  // read as names when every class word names a folder, as numbers where none of them is a folder's name
  const named = parseLabelFile('a.jpg 1\nb.jpg 2\nc.jpg 3\n', 'L', numbered);
  t.deepEqual(['a.jpg', 'b.jpg', 'c.jpg'].map((f) => named.labelOf(f)), [0, 1, 2]);
  const counted = parseLabelFile('a.jpg 0\nb.jpg 1\n', 'L', ['10', '11']);
  t.deepEqual(['a.jpg', 'b.jpg'].map((f) => counted.labelOf(f)), [0, 1]);
  t.regex(bad('a.jpg 0\nlonely\n'), /^L:2: expected "FILE CLASS", got "lonely"/);
  t.regex(bad('ImageId,PredictionString\nno-comma\n'), /^L:2: expected "ImageId,WNID \.\.\."/);
  // the devkit's ground truth: numbers in another class order, refused with what to use
  t.regex(bad('490\n361\n171\n'), /ImageNet devkit's ground truth.*LOC_val_solution\.csv/);
});

test('ILSVRC layout: a flat val/ with LOC_val_solution.csv beside it lists and decodes as the class-folder layout', async (t) => {
  const source = join(sharedDatasets, 'imagenette-mini');
  const root = tempDir(t);
  symlinkSync(join(source, 'train'), join(root, 'train'));
  mkdirSync(join(root, 'val'));
  const rows = ['ImageId,PredictionString'];
  for (const wnid of readdirSync(join(source, 'val')).sort()) {
    for (const f of readdirSync(join(source, 'val', wnid))) {
      symlinkSync(join(source, 'val', wnid, f), join(root, 'val', f));
      rows.push(`${f.replace(/\.JPEG$/, '')},${wnid} 1 2 30 40`);
    }
  }
  // an entry for an image this copy does not have is no error (the real file lists all 50,000)
  rows.push('ILSVRC2012_val_99999999,n01440764 0 0 1 1');
  writeFile(join(root, 'LOC_val_solution.csv'), rows.join('\n') + '\n');

  const flat = await listImageFolder(root);
  const folders = await listImageFolder(source);
  t.is(flat.heldOutName, 'val');
  t.is(flat.heldOut!.labelFile, join(root, 'LOC_val_solution.csv'));
  const byName = (items: readonly { path: string; label: number }[]) => new Map(items.map((it) => [it.path.split('/').pop()!, it.label]));
  t.deepEqual([...byName(flat.heldOut!.items)].sort(), [...byName(folders.heldOut!.items)].sort());

  const cache = tempDir(t);
  const a = await openDataset(root, { size: 32, cacheDir: cache, heldOutOnly: true });
  const b = await openDataset(source, { size: 32, cacheDir: cache, heldOutOnly: true });
  t.regex(a.description, /the val images' classes from LOC_val_solution\.csv/);
  t.is(a.heldOutCount, b.heldOutCount);
  const sa = openSet(a.heldOut!);
  const sb = openSet(b.heldOut!);
  // the same images with the same labels, in file-name order rather than class by class
  const key = (s: typeof sa, i: number) => `${s.labels[i]}:${Buffer.from(s.image(i)).toString('base64')}`;
  const all = (s: typeof sa) => Array.from({ length: s.count }, (_, i) => key(s, i)).sort();
  t.deepEqual(all(sa), all(sb));
});

test('a flat held-out folder: the labels file is looked for in it first; without one, or with images it does not name, a DataError says what to add', async (t) => {
  const root = tempDir(t);
  const jpg = await gradientImage(8, 8, [10, 20, 30], 'jpeg');
  writeFile(join(root, 'train', 'cat', '0.jpg'), jpg);
  writeFile(join(root, 'train', 'dog', '0.jpg'), jpg);
  writeFile(join(root, 'val', 'v1.jpg'), jpg);
  writeFile(join(root, 'val', 'v2.jpg'), jpg);
  const none = await t.throwsAsync(listImageFolder(root), { instanceOf: DataError });
  t.regex(none.message, /val holds 2 images and no class folders: give their classes in .*val\/labels\.csv .*LOC_val_solution\.csv.*val\/<class>\//);
  // the devkit's ground truth beside them (under its own name, so not read as a labels file): said why it will not do
  writeFile(join(root, 'ILSVRC2012_validation_ground_truth.txt'), '1\n0\n');
  const devkit = await t.throwsAsync(listImageFolder(root), { instanceOf: DataError });
  t.regex(devkit.message, /val holds 2 images and no class folders: .*ILSVRC2012_validation_ground_truth\.txt \(the ImageNet devkit's ground truth\) cannot give their classes, its numbers follow the devkit's own class order, not the sorted class folders; give their classes in /);

  writeFile(join(root, 'val.txt'), 'v1.jpg 0\n');
  const missing = await t.throwsAsync(listImageFolder(root), { instanceOf: DataError });
  t.regex(missing.message, /val\.txt gives no class for 1 of the 2 images in .*val \(v2\.jpg\)/);

  // labels.csv inside val/ comes before val.txt beside it
  writeFile(join(root, 'val', 'labels.csv'), 'v1.jpg,dog\nv2.jpg,cat\n');
  const f = await listImageFolder(root);
  t.is(f.heldOut!.labelFile, join(root, 'val', 'labels.csv'));
  t.deepEqual(f.heldOut!.items.map((it) => it.label), [1, 0]);

  // a flat training split is refused, saying why
  writeFile(join(root, 'flat', 'train', 'x.jpg'), jpg);
  const e = await t.throwsAsync(listImageFolder(join(root, 'flat')), { instanceOf: DataError });
  t.regex(e.message, /has no class folders: .*its 1 images lie loose: a training split needs class folders/);
});
