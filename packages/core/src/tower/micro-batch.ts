/**
 * A training batch of B images cut into N micro-batches of B / N images each, for a step that
 * pipelines its crossings (the worker's pipeline.ts): micro-batch k is images k*n .. (k+1)*n - 1.
 *
 * Every tensor between kernels is laid out [channel][image][...] (CNHW, or [unit][image] for fc
 * layers and dropout masks), so a micro-batch's part of a tensor is, in each channel's block, the
 * images of that micro-batch: `microSlice` takes it out.
 */

/** Why `n` micro-batches do not fit a batch of `batch` images (a sentence), or null when they do. */
export function microBatchProblem(batch: number, n: number): string | null {
  if (!Number.isInteger(n) || n < 1) return `${n} micro-batches: give a whole number >= 1`;
  if (n > batch) return `${n} micro-batches is more than the batch of ${batch} images`;
  if (batch % n !== 0) return `${n} micro-batches do not divide the batch of ${batch} images (divisors: ${divisors(batch).join(', ')})`;
  return null;
}

/** The numbers that divide `batch`, ascending. */
export function divisors(batch: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= batch; d++) if (batch % d === 0) out.push(d);
  return out;
}

/** Images `at` .. `at + n - 1` of `x`, which holds `channels` blocks of `batch` images each: `channels` blocks of n images. */
export function microSlice(x: Float32Array, channels: number, batch: number, at: number, n: number): Float32Array {
  const per = x.length / (channels * batch);
  if (!Number.isInteger(per) || at < 0 || n < 1 || at + n > batch) throw new Error(`images ${at}..${at + n - 1} of a tensor of ${x.length} floats as ${channels} channels x ${batch} images`);
  if (channels === 1 || n === batch) return n === batch ? x : x.subarray(at * per, (at + n) * per);
  const out = new Float32Array(channels * n * per);
  for (let c = 0; c < channels; c++) out.set(x.subarray((c * batch + at) * per, (c * batch + at + n) * per), c * n * per);
  return out;
}

/** `x` times `s`, in a new array (the loss gradient of a micro-batch scaled from 1/n to 1/B). */
export function scaled(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * s;
  return out;
}
