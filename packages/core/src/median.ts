/** The median of `xs` (the mean of the middle two for an even count); 0 for none. */
export function median(xs: ArrayLike<number>): number {
  const sorted = Float64Array.from(xs).sort();
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return 0;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
