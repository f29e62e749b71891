/** The .npy writer (npy.ts) and the feature-map statistics of `inspect activations` (inspect/stats.ts). */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeNpy, encodeNpy } from '../src/npy.js';
import { describeStats, mapStats } from '../src/inspect/stats.js';

test('a .npy file: the 1.0 header padded to 64 bytes and ending in a newline, the values little-endian float32, read back as written', (t) => {
  const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => (i - 7) / 3);
  for (const shape of [[2, 3, 4], [24], [1, 24], [2, 12]]) {
    const bytes = encodeNpy(values, shape);
    t.is(bytes.subarray(0, 8).toString('latin1'), '\x93NUMPY\x01\x00');
    const headerEnd = 10 + bytes.readUInt16LE(8);
    t.is(headerEnd % 64, 0, `header of (${shape.join(', ')}) aligned`);
    t.is(bytes[headerEnd - 1], 0x0a);
    t.is(bytes.length, headerEnd + 4 * values.length);
    const back = decodeNpy(bytes);
    t.deepEqual(back.shape, shape);
    t.deepEqual(back.values, values);
  }
  t.regex(encodeNpy(values, [24]).toString('latin1', 10, 80), /'shape': \(24,\)/, "a 1-d shape is Python's one-element tuple");
  t.throws(() => encodeNpy(values, [5, 5]), { message: /shape \(5, 5\) does not hold 24 values/ });
});

test('numpy.load reads the file (where python3 has NumPy)', (t) => {
  let hasNumpy = true;
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
  } catch {
    hasNumpy = false;
  }
  if (!hasNumpy) {
    t.pass('python3 with NumPy not found here: the header is checked above');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-npy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.npy');
  fs.writeFileSync(file, encodeNpy(Float32Array.from([1.5, -2, 0, 3.25, 1e-8, 7]), [2, 3]));
  const out = execFileSync('python3', ['-c', `import numpy as np; a = np.load(${JSON.stringify(file)}); print(a.dtype, a.shape, a.tolist())`]).toString().trim();
  t.is(out, 'float32 (2, 3) [[1.5, -2.0, 0.0], [3.25, 9.99999993922529e-09, 7.0]]');
});

test('map statistics: extremes, mean, std, the share of zeros and the maps that are zero everywhere', (t) => {
  // 3 maps of 4: one all zero, one half zero, one without a zero
  const x = Float32Array.from([0, 0, 0, 0, 0, 2, 0, 4, 1, 1, 1, 5]);
  const s = mapStats(x, 3, 4);
  t.is(s.min, 0);
  t.is(s.max, 5);
  t.is(s.mean, 14 / 12);
  const mean = 14 / 12;
  t.true(Math.abs(s.std - Math.sqrt([...x].reduce((a, v) => a + (v - mean) ** 2, 0) / 12)) < 1e-12);
  t.is(s.zeros, 6 / 12);
  t.is(s.zeroMaps, 1);
  t.is(describeStats(s), 'min 0, mean 1.17, std 1.62, max 5; 50.0% zeros; 1 of 3 maps all zero');
  // a layer with nothing left for this image says so
  t.regex(describeStats(mapStats(new Float32Array(8), 8, 1)), /every one of its 8 units zero: nothing passes this layer for this image/);
  t.throws(() => mapStats(x, 5, 4), { message: /12 values are not 5 maps of 4/ });
});
