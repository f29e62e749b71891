/**
 * A batch of n images run through a tower built for N > n images.
 *
 * Every tensor between kernels is laid out [channel][image][...], so padding
 * appends N - n zero images at the end of each channel's block and taking
 * drops them again. In a forward pass without dropout (evaluation) the images
 * never meet (no batch statistics), so the first n results are those of a
 * tower built for n images, up to the GEMMs' summation order. The worker uses
 * this for an evaluation's last, shorter batch: the training tower runs it,
 * instead of a second tower with its own kernels (and their worker threads)
 * kept alive for the rest of the run.
 */
import { microSlice } from './micro-batch.js';

/** `x` of `channels` x `n` images as `channels` x `N` images, the extra ones zero. */
export function padBatch(x: Float32Array, channels: number, n: number, N: number): Float32Array {
  const per = checkedImageSize(x, channels, n, n <= N);
  if (n === N) return x;
  const out = new Float32Array(channels * N * per);
  for (let c = 0; c < channels; c++) out.set(x.subarray(c * n * per, (c + 1) * n * per), c * N * per);
  return out;
}

/** The first `n` images of `x`, which holds `channels` x `N` images. */
export function takeBatch(x: Float32Array, channels: number, N: number, n: number): Float32Array {
  checkedImageSize(x, channels, N, n <= N && n > 0);
  return microSlice(x, channels, N, 0, n);
}

/** Floats per image and channel; a length that does not divide, or n outside 1..N, is a bug in the caller. */
function checkedImageSize(x: Float32Array, channels: number, images: number, inRange: boolean): number {
  const per = x.length / (channels * images);
  if (!inRange || !Number.isInteger(per) || !(channels > 0) || !(images > 0)) {
    throw new Error(`a tensor of ${x.length} floats is not ${channels} channels x ${images} images, or the batches are out of order`);
  }
  return per;
}
