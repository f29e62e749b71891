/** The paper's augmentation: crops, flips, PCA colour noise, mean subtraction; epochs and batches. */
import test from 'ava';
import { Rng } from '../src/random.js';
import {
  BatchMaker,
  ChannelStatsAccumulator,
  MemorySet,
  cifarAugment,
  cropF32,
  cropU8,
  drawAugment,
  epochOrder,
  paperAugment,
  pcaShift,
  symmetricEigen3,
  type ChannelStats,
} from '../src/data/index.js';

function randomImages(n: number, size: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n * 3 * size * size }, () => r.int(256));
}

/** The crop by definition: pixel (c, oy, ox) of the output is (c, y+oy-pad, x+ox'-pad) of the input, 0 outside. */
function referenceCrop(img: Uint8Array, size: number, pad: number, v: { x: number; y: number; flip: boolean }, crop: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < 3; c++)
    for (let oy = 0; oy < crop; oy++)
      for (let ox = 0; ox < crop; ox++) {
        const sy = v.y + oy - pad;
        const sx = v.x + (v.flip ? crop - 1 - ox : ox) - pad;
        out.push(sy < 0 || sy >= size || sx < 0 || sx >= size ? 0 : img[c * size * size + sy * size + sx]!);
      }
  return out;
}

test('presets: paper = 224 crops of 256, no padding; cifar = 32 crops of the 4-padded 32', (t) => {
  t.deepEqual(paperAugment(), { storedSize: 256, crop: 224, pad: 0, flip: true, pcaStd: 0.1 });
  t.deepEqual(cifarAugment(), { storedSize: 32, crop: 32, pad: 4, flip: true, pcaStd: 0.1 });
});

test('crop offsets stay in range and cover it; flips happen about half the time; deterministic per (seed, epoch, index)', (t) => {
  for (const cfg of [paperAugment(), cifarAugment()]) {
    const range = cfg.storedSize + 2 * cfg.pad - cfg.crop; // 32 and 8
    const seenX = new Set<number>();
    const seenY = new Set<number>();
    let flips = 0;
    const N = 4000;
    for (let i = 0; i < N; i++) {
      const a = drawAugment(cfg, 7, 0, i);
      t.true(a.x >= 0 && a.x <= range && a.y >= 0 && a.y <= range);
      seenX.add(a.x);
      seenY.add(a.y);
      if (a.flip) flips++;
    }
    t.is(seenX.size, range + 1);
    t.is(seenY.size, range + 1);
    // binomial(4000, 1/2): standard deviation 32
    t.true(Math.abs(flips - N / 2) < 130, `${flips} flips of ${N}`);
  }
  const c = cifarAugment();
  t.deepEqual(drawAugment(c, 1, 2, 3), drawAugment(c, 1, 2, 3));
  t.notDeepEqual(drawAugment(c, 1, 2, 3), drawAugment(c, 1, 3, 3), 'a new draw every epoch');
  t.notDeepEqual(drawAugment(c, 1, 2, 3), drawAugment(c, 2, 2, 3));
});

test('cropU8 and cropF32 match the definition (padding, flips, offsets); float = (u8 + shift - mean) / scale', (t) => {
  const size = 12;
  const img = randomImages(1, size, 5);
  const r = new Rng(9);
  for (let k = 0; k < 40; k++) {
    const pad = k % 3;
    const crop = 6 + (k % 5);
    const v = { x: r.int(size + 2 * pad - crop + 1), y: r.int(size + 2 * pad - crop + 1), flip: k % 2 === 1 };
    const n = 3;
    const slot = { n, i: k % n };
    const u8 = new Uint8Array(3 * n * crop * crop);
    cropU8(img, size, pad, v, crop, u8, slot);
    const want = referenceCrop(img, size, pad, v, crop);
    const got: number[] = [];
    for (let c = 0; c < 3; c++) for (let p = 0; p < crop * crop; p++) got.push(u8[(c * n + slot.i) * crop * crop + p]!);
    t.deepEqual(got, want);
    const shift = [3.4, -2.6, 0.2];
    const mean = [120, 110, 100];
    const f = new Float32Array(3 * n * crop * crop);
    cropF32(img, size, pad, v, crop, f, slot, shift, mean, 64);
    const s8 = new Uint8Array(3 * n * crop * crop);
    cropU8(img, size, pad, v, crop, s8, slot, shift);
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < crop * crop; p++) {
        const j = (c * n + slot.i) * crop * crop + p;
        t.true(Math.abs(f[j]! - (want[c * crop * crop + p]! + shift[c]! - mean[c]!) / 64) < 1e-5);
        t.is(s8[j], Math.min(255, Math.max(0, Math.round(want[c * crop * crop + p]! + shift[c]!))));
      }
  }
});

test('statistics: mean, covariance and its eigen-decomposition (P diag(l) P^T = C, P orthonormal)', (t) => {
  const size = 8;
  const n = 50;
  const imgs = randomImages(n, size, 11);
  // correlate the channels: G = (R + G) / 2
  for (let i = 0; i < n; i++) for (let p = 0; p < 64; p++) imgs[i * 192 + 64 + p] = (imgs[i * 192 + p]! + imgs[i * 192 + 64 + p]!) >> 1;
  const acc = new ChannelStatsAccumulator();
  for (let i = 0; i < n; i++) acc.add(imgs.subarray(i * 192, (i + 1) * 192), 64);
  const s = acc.finish();
  // direct float64 computation
  const m = [0, 0, 0];
  const cov = new Array(9).fill(0);
  const N = n * 64;
  for (let i = 0; i < n; i++) for (let p = 0; p < 64; p++) for (let c = 0; c < 3; c++) m[c] += imgs[i * 192 + c * 64 + p]! / N;
  for (let i = 0; i < n; i++)
    for (let p = 0; p < 64; p++)
      for (let a = 0; a < 3; a++)
        for (let b = 0; b < 3; b++) cov[a * 3 + b] += ((imgs[i * 192 + a * 64 + p]! - m[a]!) * (imgs[i * 192 + b * 64 + p]! - m[b]!)) / N / 255 / 255;
  for (let c = 0; c < 3; c++) t.true(Math.abs(s.mean[c]! - m[c]!) < 1e-9);
  for (let k = 0; k < 9; k++) t.true(Math.abs(s.covariance[k]! - cov[k]!) < 1e-9);
  const P = s.eigenvectors;
  const l = s.eigenvalues;
  t.true(l[0] >= l[1] && l[1] >= l[2]);
  for (let a = 0; a < 3; a++)
    for (let b = 0; b < 3; b++) {
      let rec = 0;
      let dot = 0;
      for (let i = 0; i < 3; i++) {
        rec += P[a * 3 + i]! * l[i]! * P[b * 3 + i]!;
        dot += P[i * 3 + a]! * P[i * 3 + b]!;
      }
      t.true(Math.abs(rec - cov[a * 3 + b]!) < 1e-12, 'P diag(l) P^T = C');
      t.true(Math.abs(dot - (a === b ? 1 : 0)) < 1e-12, 'P^T P = I');
    }
  // a diagonal matrix and a matrix with repeated eigenvalues
  const d = symmetricEigen3([1, 0, 0, 0, 3, 0, 0, 0, 2]);
  t.deepEqual(d.values, [3, 2, 1]);
  t.deepEqual(symmetricEigen3([2, 0, 0, 0, 2, 0, 0, 0, 2]).values, [2, 2, 2]);
});

test('PCA colour noise has covariance 255^2 P diag(0.1^2 l^2) P^T', (t) => {
  // ImageNet's published statistics (fb.resnet.torch), 0..1 units
  const stats: ChannelStats = {
    images: 1,
    mean: [124, 116, 104],
    covariance: [],
    eigenvalues: [0.2175, 0.0188, 0.0045],
    eigenvectors: [-0.5675, 0.7192, 0.4009, -0.5808, -0.0045, -0.814, -0.5836, -0.6948, 0.4203],
  };
  const cfg = paperAugment();
  const N = 20000;
  const shifts: number[][] = [];
  for (let i = 0; i < N; i++) shifts.push(pcaShift(drawAugment(cfg, 3, 0, i).alpha, stats));
  const mean = [0, 1, 2].map((c) => shifts.reduce((s, v) => s + v[c]!, 0) / N);
  const P = stats.eigenvectors;
  const l = stats.eigenvalues;
  let maxEntry = 0;
  const want: number[] = [];
  for (let a = 0; a < 3; a++)
    for (let b = 0; b < 3; b++) {
      let w = 0;
      for (let i = 0; i < 3; i++) w += P[a * 3 + i]! * (0.1 * l[i]!) ** 2 * P[b * 3 + i]!;
      want.push(255 * 255 * w);
      maxEntry = Math.max(maxEntry, Math.abs(255 * 255 * w));
    }
  for (let a = 0; a < 3; a++) {
    t.true(Math.abs(mean[a]!) < 0.15, `mean shift ${mean[a]}`);
    for (let b = 0; b < 3; b++) {
      const emp = shifts.reduce((s, v) => s + (v[a]! - mean[a]!) * (v[b]! - mean[b]!), 0) / (N - 1);
      // 20000 draws: the entries' sampling error is ~1% of the largest
      t.true(Math.abs(emp - want[a * 3 + b]!) < 0.04 * maxEntry, `cov[${a}][${b}] = ${emp.toFixed(3)}, want ${want[a * 3 + b]!.toFixed(3)}`);
    }
  }
  // the drawn shifts' size: about 5.5 pixel levels (almost all along p1: 255 * 0.1 * 0.2175)
  const rms = Math.sqrt(shifts.reduce((s, v) => s + v[0]! ** 2 + v[1]! ** 2 + v[2]! ** 2, 0) / N);
  t.true(Math.abs(rms - 5.55) < 0.15, `rms shift ${rms.toFixed(3)} pixel levels`);
});

test('epochs: each is a permutation, a new one every epoch, the same for the same seed', (t) => {
  const a = epochOrder(100, 1, 0);
  t.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  t.notDeepEqual(a, epochOrder(100, 1, 1));
  t.deepEqual(a, epochOrder(100, 1, 0));
  t.deepEqual([...epochOrder(5, 1, 0, false)], [0, 1, 2, 3, 4]);
});

test('batches: every image once per epoch, batches straddle epochs, u8 and f32 agree, deterministic', (t) => {
  const n = 10;
  const size = 8;
  const pixels = randomImages(n, size, 2);
  const labels = Uint32Array.from({ length: n }, (_, i) => i % 3);
  const set = new MemorySet(pixels, labels, size, ['a', 'b', 'c']);
  const stats: ChannelStats = { images: n, mean: [100, 110, 120], covariance: [], eigenvalues: [0.2, 0.02, 0.004], eigenvectors: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const m = new BatchMaker(set, { seed: 4, augment: cifarAugment(size), stats });
  // batches of 4: steps 0, 1 and half of 2 are epoch 0
  const idx = [0, 1, 2].flatMap((s) => [...m.positions(s, 4).indices]);
  const ep = [0, 1, 2].flatMap((s) => [...m.positions(s, 4).epochs]);
  t.deepEqual(ep, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  t.deepEqual(idx.slice(0, 10).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.deepEqual(idx.slice(0, 10), [...epochOrder(n, 4, 0)]);
  t.deepEqual(idx.slice(10), [...epochOrder(n, 4, 1)].slice(0, 2));
  const u = m.u8(2, 4);
  const f = m.f32(2, 4);
  t.deepEqual([...u.labels], [...u.indices].map((i) => labels[i]!));
  t.deepEqual([...f.labels], [...u.labels]);
  t.is(u.images.length, 3 * 4 * size * size);
  for (let i = 0; i < 4; i++) {
    const a = drawAugment(cifarAugment(size), 4, u.epochs[i]!, u.indices[i]!);
    const shift = pcaShift(a.alpha, stats);
    t.deepEqual([...u.shifts.subarray(3 * i, 3 * i + 3)].map((x) => Math.fround(x)), shift.map((x) => Math.fround(x)));
    const want = referenceCrop(set.image(u.indices[i]!), size, cifarAugment(size).pad, a, size);
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < size * size; p++) {
        const j = (c * 4 + i) * size * size + p;
        t.is(u.images[j], Math.min(255, Math.max(0, Math.round(want[c * size * size + p]! + shift[c]!))));
        t.true(Math.abs(f.images[j]! - (want[c * size * size + p]! + shift[c]! - stats.mean[c]!) / 64) < 1e-5);
      }
  }
  // the shifts alone, pixels left as they are (for a worker that adds them exactly)
  const plain = new BatchMaker(set, { seed: 4, augment: cifarAugment(size), stats, shiftInU8: false }).u8(2, 4);
  t.deepEqual(plain.shifts, u.shifts);
  const none = new BatchMaker(set, { seed: 4, augment: { ...cifarAugment(size), pcaStd: 0 }, stats }).u8(2, 4);
  t.deepEqual(plain.images, none.images);
  t.notDeepEqual(plain.images, u.images);
  const again = new BatchMaker(set, { seed: 4, augment: cifarAugment(size), stats });
  t.deepEqual(again.u8(2, 4), u);
  t.notDeepEqual(new BatchMaker(set, { seed: 5, augment: cifarAugment(size), stats }).u8(2, 4).images, u.images);
});
