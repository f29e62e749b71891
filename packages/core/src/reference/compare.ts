/**
 * How far a computed array is from a reference one: the check every kernel test, the distributed
 * run against its one-process oracle, and the benchmarks' peer comparison make.
 */

/** Largest |a-b| / (atol + |b|) over the arrays: a relative error that tolerates reference values near zero. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>, atol: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (atol + Math.abs(b[i]!)));
  return m;
}

/**
 * max |a - b| over max |b|: the error on the scale of the tensor (long float32 sums, values that cancel to
 * near zero; two runs whose sums differ in their order of additions only).
 */
export function scaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let diff = 0;
  let size = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    size = Math.max(size, Math.abs(b[i]!));
  }
  return size > 0 ? diff / size : diff;
}
