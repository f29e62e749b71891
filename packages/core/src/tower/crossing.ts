/**
 * What happens at a crossing point, written once for both the one-process
 * trainer and the workers, so that both add the same numbers in the same order.
 *
 * Forward: the next layer of each tower reads [tower 0's output; tower 1's output].
 * Backward: each tower's layer gives the gradient of that whole concatenation;
 * tower t's output gradient is the sum of the two towers' slices t,
 * always added as (tower 0's slice) + (tower 1's slice).
 */
export function concatTowers(out0: Float32Array, out1: Float32Array): Float32Array {
  const x = new Float32Array(out0.length + out1.length);
  x.set(out0, 0);
  x.set(out1, out0.length);
  return x;
}

/** The slice of a concatenated-input gradient that belongs to tower t. */
export function towerSlice(dIn: Float32Array, t: 0 | 1): Float32Array {
  const half = dIn.length / 2;
  return dIn.subarray(t * half, (t + 1) * half);
}

/** Tower t's output gradient from both towers' slices t (from0 = tower 0's, from1 = tower 1's). */
export function sumSlices(from0: Float32Array, from1: Float32Array): Float32Array {
  const out = new Float32Array(from0.length);
  for (let i = 0; i < out.length; i++) out[i] = from0[i]! + from1[i]!;
  return out;
}
