/** Evaluation: the centre crop and the ten patches, their batches, and the averaged softmax. */
import test from 'ava';
import { Rng } from '../src/random.js';
import { topKCorrect } from '../src/train/metrics.js';
import { MemorySet, averageViewSoftmax, centreView, evalBatchF32, evalBatchU8, tenViews, viewsU8 } from '../src/data/index.js';

test('ten patches of 224 in 256: four corners, the centre, and their flips', (t) => {
  t.deepEqual(centreView(256, 224), { x: 16, y: 16, flip: false });
  t.deepEqual(tenViews(256, 224), [
    { x: 0, y: 0, flip: false },
    { x: 32, y: 0, flip: false },
    { x: 0, y: 32, flip: false },
    { x: 32, y: 32, flip: false },
    { x: 16, y: 16, flip: false },
    { x: 0, y: 0, flip: true },
    { x: 32, y: 0, flip: true },
    { x: 0, y: 32, flip: true },
    { x: 32, y: 32, flip: true },
    { x: 16, y: 16, flip: true },
  ]);
  t.deepEqual(centreView(32, 32), { x: 0, y: 0, flip: false });
  t.throws(() => centreView(20, 24));
});

test('the views of an image: shapes and contents', (t) => {
  const S = 10;
  const crop = 6;
  // pixel value encodes its position: 10 y + x + 100 c (c < 2 keeps it in a byte)
  const img = new Uint8Array(3 * S * S);
  for (let c = 0; c < 3; c++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) img[c * S * S + y * S + x] = (c % 2) * 100 + y * S + x;
  const ten = viewsU8(img, S, crop, 'ten');
  t.is(ten.length, 3 * 10 * crop * crop);
  const at = (v: number, c: number, y: number, x: number) => ten[((c * 10 + v) * crop + y) * crop + x]!;
  // top-left (0,0), top-right (4,0), bottom-left (0,4), bottom-right (4,4), centre (2,2)
  t.is(at(0, 0, 0, 0), 0);
  t.is(at(1, 0, 0, 0), 4);
  t.is(at(2, 0, 0, 0), 40);
  t.is(at(3, 0, 5, 5), 99);
  t.is(at(4, 1, 0, 0), 122);
  // flipped: view 5 is view 0 mirrored
  for (let y = 0; y < crop; y++) for (let x = 0; x < crop; x++) t.is(at(5, 2, y, x), at(0, 2, y, crop - 1 - x));
  t.is(viewsU8(img, S, crop, 'centre').length, 3 * crop * crop);
});

test('view batches from a set: image j, view v in column j * views + v; labels per image', (t) => {
  const r = new Rng(1);
  const S = 8;
  const pixels = Uint8Array.from({ length: 5 * 3 * S * S }, () => r.int(256));
  const set = new MemorySet(pixels, Uint32Array.from([4, 3, 2, 1, 0]), S, ['a', 'b', 'c', 'd', 'e']);
  const b = evalBatchU8(set, 1, 3, 6, 'ten');
  t.is(b.views, 10);
  t.deepEqual([...b.labels], [3, 2, 1]);
  t.is(b.images.length, 3 * 30 * 36);
  const one = viewsU8(set.image(2), S, 6, 'ten');
  const n = 30;
  for (let c = 0; c < 3; c++)
    for (let v = 0; v < 10; v++)
      for (let p = 0; p < 36; p++) t.is(b.images[(c * n + 10 + v) * 36 + p], one[(c * 10 + v) * 36 + p]);
  const f = evalBatchF32(set, 1, 3, 6, 'centre', [100, 100, 100], 50);
  t.is(f.views, 1);
  const cu = evalBatchU8(set, 1, 3, 6, 'centre');
  for (let k = 0; k < f.images.length; k++) t.true(Math.abs(f.images[k]! - (cu.images[k]! - 100) / 50) < 1e-6);
});

test('averaged softmax over views, scored with top-k', (t) => {
  // 2 classes, 2 images, 2 views: logits [class][image * views + view]
  const logits = Float32Array.from([
    // class 0: img0 v0, img0 v1, img1 v0, img1 v1
    0, Math.log(3), 2, 0,
    // class 1
    0, 0, 0, 3,
  ]);
  const p = averageViewSoftmax(logits, 2, 2);
  const sm = (a: number, b: number) => Math.exp(a) / (Math.exp(a) + Math.exp(b));
  t.true(Math.abs(p[0]! - (0.5 + 0.75) / 2) < 1e-6);
  t.true(Math.abs(p[2]! - (0.25 + 0.5) / 2) < 1e-6);
  t.true(Math.abs(p[1]! - (sm(2, 0) + sm(0, 3)) / 2) < 1e-6);
  t.true(Math.abs(p[1]! + p[3]! - 1) < 1e-6, 'probabilities sum to 1');
  // image 0 is class 0 (0.625), image 1 class 1 (0.52)
  t.is(topKCorrect(p, [0, 1], 2, 1), 2);
  t.is(topKCorrect(p, [1, 0], 2, 1), 0);
  t.is(topKCorrect(p, [1, 0], 2, 2), 2);
  // ties rank the lower class first (argmax's choice), so a net that outputs a constant is not 100% right;
  // a NaN among an image's logits makes it wrong
  const flat = new Float32Array(3 * 2).fill(0.5);
  t.is(topKCorrect(flat, [0, 2], 3, 1), 1, 'image 0 (class 0) wins its tie, image 1 (class 2) does not');
  t.is(topKCorrect(flat, [0, 2], 3, 2), 1);
  t.is(topKCorrect(flat, [0, 2], 3, 3), 2);
  // [class][image], two images
  t.is(topKCorrect(Float32Array.from([NaN, 0.1, 0.9, 0.2]), [0, 1], 2, 1), 1, 'image 0: a NaN target is wrong; image 1 is right');
  t.is(topKCorrect(Float32Array.from([0.2, 0.3, NaN, 0.1]), [0, 0], 2, 1), 1, 'image 0: a NaN rival makes it wrong; image 1 is right');
  // one view: the plain softmax
  const single = averageViewSoftmax(Float32Array.from([1, 2, 3, 0, 0, 0]), 2, 1);
  t.true(Math.abs(single[0]! - sm(1, 0)) < 1e-6);
  t.throws(() => averageViewSoftmax(new Float32Array(6), 2, 2));
});
