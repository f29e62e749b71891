/** Figures and lists as messages say them. */

/** A size in words, decimal as disks are sold: "41.0 kB", "812.0 MB", "252.3 GB". */
export function bytesInWords(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}

/** The first `n` of a list, joined by commas, with ", ..." when there are more: "a, b, c, ...". */
export function firstFew(xs: readonly string[], n = 3): string {
  return xs.slice(0, n).join(', ') + (xs.length > n ? ', ...' : '');
}
