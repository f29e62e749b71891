/**
 * The inspection pictures and the colour score on constructed data: the
 * score of grey, opponent-colour and random kernels; grid and PNG sizes;
 * scaling (a grey kernel stays grey, 0 is mid grey); input-channel slices.
 */
import test from 'ava';
import sharp from 'sharp';
import { Rng } from '@alexnet-mp/core';
import { colourScore, kernelColourShare } from '../src/inspect/colour.js';
import { featureMapGrid, featureTiles, gridSize, kernelGrid, kernelTiles, parseInputSelection, tileGrid } from '../src/inspect/grid.js';
import { encodePng, inputRaster } from '../src/inspect/png.js';
import { predictionsPng, predictionsSize, softmaxColumn, topK } from '../src/inspect/predictions.js';
import { dataStem } from '../src/cli/inspect-command.js';

const K = 5;
const P = K * K;

/** `out` kernels [out][3][K][K] from a function of (kernel, channel, pixel). */
function kernels(out: number, f: (o: number, c: number, p: number) => number): Float32Array {
  const w = new Float32Array(out * 3 * P);
  for (let o = 0; o < out; o++) for (let c = 0; c < 3; c++) for (let p = 0; p < P; p++) w[(o * 3 + c) * P + p] = f(o, c, p);
  return w;
}

test('colour score: a grey kernel scores 0, a red-green or yellow-blue opponent kernel 1, random kernels about 2/3', (t) => {
  const rng = new Rng(5);
  const pattern = Array.from({ length: P }, () => rng.normal());
  const grey = kernels(4, (_o, _c, p) => pattern[p]!);
  t.true(colourScore(grey, [4, 3, K, K]).mean < 1e-12);
  // R = -G, B = 0: no luminance at all
  const redGreen = kernels(4, (_o, c, p) => (c === 0 ? pattern[p]! : c === 1 ? -pattern[p]! : 0));
  t.true(Math.abs(colourScore(redGreen, [4, 3, K, K]).mean - 1) < 1e-6);
  // R = G = pattern, B = -2 pattern: yellow-blue, also no luminance
  const yellowBlue = kernels(2, (_o, c, p) => (c === 2 ? -2 * pattern[p]! : pattern[p]!));
  t.true(Math.abs(colourScore(yellowBlue, [2, 3, K, K]).mean - 1) < 1e-6);
  // a red-only kernel: 2/3 of its energy is chroma (R = (L/sqrt3 + O1/sqrt2 + O2/sqrt6)...)
  const redOnly = kernels(1, (_o, c, p) => (c === 0 ? pattern[p]! : 0));
  t.true(Math.abs(kernelColourShare(redOnly, 0, P) - 2 / 3) < 1e-6);
  const noise = Float32Array.from({ length: 200 * 3 * P }, () => rng.normal());
  const s = colourScore(noise, [200, 3, K, K]);
  t.true(Math.abs(s.mean - 2 / 3) < 0.03, `random kernels: ${s.mean}`);
  t.is(s.shares.length, 200);
  // half grey, half opponent: mean 0.5, median between
  const mixed = kernels(4, (o, c, p) => (o < 2 ? pattern[p]! : c === 0 ? pattern[p]! : c === 1 ? -pattern[p]! : 0));
  const m = colourScore(mixed, [4, 3, K, K]);
  t.true(Math.abs(m.mean - 0.5) < 1e-6 && Math.abs(m.median - 0.5) < 1e-6);
  t.throws(() => colourScore(new Float32Array(2 * 4 * P), [2, 4, K, K]), { message: /RGB kernels/ });
});

test('kernel grid: tower 0 above tower 1, the size gridSize says, a grey kernel stays grey, 0 is mid grey', async (t) => {
  const rng = new Rng(9);
  const pattern = Array.from({ length: P }, () => rng.normal());
  const w0 = kernels(20, (o, _c, p) => (o === 0 ? pattern[p]! : o === 1 ? 0 : rng.normal()));
  const w1 = kernels(20, (_o, c, p) => (c === 0 ? pattern[p]! : c === 1 ? -pattern[p]! : 0));
  const r = kernelGrid([kernelTiles(w0, [20, 3, K, K]), kernelTiles(w1, [20, 3, K, K])], { columns: 8, zoom: 3 });
  const g = gridSize(20, K, K, { columns: 8, zoom: 3 });
  t.deepEqual([g.columns, g.rows, g.zoom], [8, 3, 3]);
  t.is(r.width, 8 * 15 + 9);
  t.is(r.height, 2 * g.height + 3);
  const png = await encodePng(r);
  const meta = await sharp(png).metadata();
  t.deepEqual([meta.width, meta.height, meta.format], [r.width, r.height, 'png']);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  // kernel 0 of tower 0 (grey): every pixel has R = G = B; kernel 1 (zeros): mid grey
  for (let y = 1; y < 16; y++) for (let x = 1; x < 16; x++) t.true(new Set(px(x, y)).size === 1);
  t.deepEqual(px(16 + 1, 1), [128, 128, 128]);
  // tower 1's first kernel (red-green), below the band: where R is bright G is dark
  const y1 = g.height + 3 + 1;
  let opposite = 0;
  for (let y = y1; y < y1 + 15; y++) for (let x = 1; x < 16; x++) {
    const [R, G, B] = px(x, y);
    if (R! > 140) opposite += G! < 116 && Math.abs(B! - 128) <= 1 ? 1 : -1000;
  }
  t.true(opposite > 0);
  // the band between the towers is light
  t.deepEqual(px(0, g.height + 1), [200, 200, 200]);
});

test('kernel tiles: one input channel (grey) or a 3-channel slice (RGB) of kernels with more inputs; bad --input-idx is one message', (t) => {
  const w = Float32Array.from({ length: 2 * 8 * 3 * 3 }, (_, i) => i);
  const one = kernelTiles(w, [2, 8, 3, 3], parseInputSelection('5', 8));
  t.deepEqual([one.count, one.channels, one.h], [2, 1, 3]);
  t.deepEqual(Array.from(one.data.subarray(0, 9)), Array.from({ length: 9 }, (_, i) => 5 * 9 + i));
  t.deepEqual(Array.from(one.data.subarray(9, 18)), Array.from({ length: 9 }, (_, i) => 8 * 9 + 5 * 9 + i));
  const rgb = kernelTiles(w, [2, 8, 3, 3], parseInputSelection('2:5', 8));
  t.is(rgb.channels, 3);
  t.is(rgb.data[0], 2 * 9);
  t.deepEqual(parseInputSelection(undefined, 3), { start: 0, count: 3 });
  t.deepEqual(parseInputSelection(undefined, 64), { start: 0, count: 1 });
  t.throws(() => parseInputSelection('8', 8), { message: /8 input channels/ });
  t.throws(() => parseInputSelection('0:2', 8), { message: /one channel \(grey\) or three/ });
  t.throws(() => parseInputSelection('x', 8), { message: /--input-idx "x"/ });
});

test('feature maps: one scale for both towers (a weaker tower is darker), fc units as one square tile, sizes', async (t) => {
  const C = 6;
  const H = 7;
  const m0 = Float32Array.from({ length: C * H * H }, (_, i) => (i % 13) / 13);
  const m1 = m0.map((v) => v / 4);
  const r = featureMapGrid([featureTiles(m0, [C, H, H]), featureTiles(m1, [C, H, H])]);
  const g = gridSize(C, H, H, { minTile: 32 });
  t.is(g.zoom, 5);
  t.deepEqual([r.width, r.height], [g.width, 2 * g.height + 3]);
  const mean = (y0: number, y1: number) => {
    let s = 0;
    for (let y = y0; y < y1; y++) for (let x = 0; x < r.width; x++) s += r.data[(y * r.width + x) * 3]!;
    return s / ((y1 - y0) * r.width);
  };
  t.true(mean(0, g.height) > 2 * mean(g.height + 3, r.height));
  // each map on its own: the towers look alike
  const each = featureMapGrid([featureTiles(m0, [C, H, H]), featureTiles(m1, [C, H, H])], { scale: 'each' });
  t.deepEqual(Array.from(each.data.subarray(0, g.height * each.width * 3)), Array.from(each.data.subarray((g.height + 3) * each.width * 3)));
  // fc: 10 units -> one 4x4 tile
  const fc = featureTiles(Float32Array.from({ length: 10 }, (_, i) => i), [10, 1, 1]);
  t.deepEqual([fc.count, fc.h, fc.w], [1, 4, 4]);
  const one = featureMapGrid([fc, null]);
  t.deepEqual([one.width, one.height], [4 * 8 + 2, 4 * 8 + 2]);
  t.throws(() => featureTiles(new Float32Array(5), [2, 2, 2]), { message: /not maps/ });
  // a signed map: 0 is mid grey
  const signed = tileGrid({ count: 1, channels: 1, h: 1, w: 2, data: Float32Array.of(-1, 0) }, { range: 1, signed: true }, { zoom: 1, gap: 0 });
  t.deepEqual(Array.from(signed.data), [0, 0, 0, 128, 128, 128]);
});

test('predictions picture: size, softmax and top-5', async (t) => {
  const classes = 10;
  const n = 3;
  const logits = Float32Array.from({ length: classes * n }, (_, i) => ((i * 7) % 11) - 5);
  const p = softmaxColumn(logits, classes, n, 1);
  t.true(Math.abs(p.reduce((s, x) => s + x, 0) - 1) < 1e-9);
  // image 1's column, [class][image] layout: exp(z) / sum exp(z), computed here without the max shift
  const z = Array.from({ length: classes }, (_, c) => logits[c * n + 1]!);
  const sum = z.reduce((s, v) => s + Math.exp(v), 0);
  z.forEach((v, c) => t.true(Math.abs(p[c]! - Math.exp(v) / sum) < 1e-12, `class ${c}`));
  const top = topK(p, 5);
  t.is(top.length, 5);
  const byP = z.map((v, c) => ({ v, c })).sort((a, b) => b.v - a.v || a.c - b.c).slice(0, 5).map((x) => x.c);
  t.deepEqual(top.map((g) => g.cls), byP, 'the five largest logits, ties by class index');
  for (let i = 1; i < 5; i++) t.true(top[i - 1]!.p >= top[i]!.p);
  const images = Uint8Array.from({ length: 3 * n * 16 * 16 }, (_, i) => i % 251);
  const items = [0, 1, 2].map((j) => ({ image: inputRaster(images, n, j, 16, 4), label: j === 2 ? null : j, probs: softmaxColumn(logits, classes, n, j) }));
  const png = await predictionsPng(items, ['airplane', 'automobile', 'bird & <cat>']);
  const meta = await sharp(png).metadata();
  const want = predictionsSize(3, 64);
  t.deepEqual([meta.width, meta.height], [want.width, want.height]);
  // the first image is drawn where it belongs, pixel for pixel
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  t.deepEqual(at(8 + 4 * 3, 8 + 4 * 2), [images[2 * 16 + 3]!, images[3 * 256 + 2 * 16 + 3]!, images[6 * 256 + 2 * 16 + 3]!]);
  // the text rendered: dark pixels below the image
  let dark = 0;
  for (let y = 8 + 64; y < info.height; y++) for (let x = 0; x < want.cellWidth; x++) if (at(x, y)[0]! < 100) dark++;
  t.true(dark > 100);
});

test("default picture names carry --data's folder name, so that two data sets' pictures of one model are two files", (t) => {
  t.is(dataStem(undefined), '-');
  t.is(dataStem('/data/pets'), '-pets-');
  t.is(dataStem('/data/pets/'), '-pets-');
  t.is(dataStem('cifar10'), '-cifar10-');
  t.is(dataStem('/data/my photos'), '-my_photos-');
});
