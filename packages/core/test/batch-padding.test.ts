/**
 * padBatch / takeBatch: n images of a [channel][image][...] tensor as N images
 * (zeros after each channel's n) and back; against a plain per-element loop.
 */
import test from 'ava';
import { padBatch, takeBatch } from '../src/tower/batch-padding.js';

/** x[c][i][k] = 1000 c + 10 i + k + 1 (never zero), of `channels` x `images` x `per`. */
function tensor(channels: number, images: number, per: number): Float32Array {
  const x = new Float32Array(channels * images * per);
  for (let c = 0; c < channels; c++) for (let i = 0; i < images; i++) for (let k = 0; k < per; k++) x[(c * images + i) * per + k] = 1000 * c + 10 * i + k + 1;
  return x;
}

test('padBatch puts each channel\'s n images first in a block of N and zeros after them; takeBatch gives them back', (t) => {
  const [C, n, N, per] = [3, 2, 5, 4];
  const x = tensor(C, n, per);
  const p = padBatch(x, C, n, N);
  t.is(p.length, C * N * per);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < per; k++) {
        const want = i < n ? 1000 * c + 10 * i + k + 1 : 0;
        t.is(p[(c * N + i) * per + k], want, `[${c}][${i}][${k}]`);
      }
    }
  }
  t.deepEqual(takeBatch(p, C, N, n), x);
  // a [channel][image] tensor (fc outputs, logits): one float per image and channel
  const fc = tensor(10, 3, 1);
  t.deepEqual(takeBatch(padBatch(fc, 10, 3, 64), 10, 64, 3), fc);
});

test('takeBatch keeps the first n images of every channel of a full tensor', (t) => {
  const [C, N, n, per] = [2, 4, 3, 6];
  const full = tensor(C, N, per);
  const got = takeBatch(full, C, N, n);
  const want: number[] = [];
  for (let c = 0; c < C; c++) for (let i = 0; i < n; i++) for (let k = 0; k < per; k++) want.push(1000 * c + 10 * i + k + 1);
  t.deepEqual([...got], want);
});

test('the same batch size is the tensor itself; a length that does not fit, or n above N, is refused', (t) => {
  const x = tensor(2, 3, 5);
  t.is(padBatch(x, 2, 3, 3), x);
  t.is(takeBatch(x, 2, 3, 3), x);
  t.throws(() => padBatch(x, 4, 3, 8), { message: /30 floats is not 4 channels x 3 images/ });
  t.throws(() => padBatch(x, 2, 3, 2), { message: /out of order/ });
  t.throws(() => takeBatch(x, 2, 3, 4), { message: /out of order/ });
  t.throws(() => takeBatch(x, 2, 3, 0), { message: /out of order/ });
});
