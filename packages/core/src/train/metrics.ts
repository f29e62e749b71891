/**
 * Top-k accuracy from logits laid out [class][image]: an image counts when fewer than k classes rank
 * above its label. A tie ranks the lower class index first (as argmax does), so equal logits (a dead
 * net) are not all counted correct, and a NaN anywhere in the image's logits makes it wrong.
 */
export function topKCorrect(logits: Float32Array, labels: ArrayLike<number>, classes: number, k: number): number {
  const N = labels.length;
  let correct = 0;
  for (let n = 0; n < N; n++) {
    const label = labels[n]!;
    const target = logits[label * N + n]!;
    if (Number.isNaN(target)) continue;
    let higher = 0;
    for (let c = 0; c < classes; c++) {
      if (c === label) continue;
      const v = logits[c * N + n]!;
      if (v > target || (v === target && c < label) || Number.isNaN(v)) higher++;
    }
    if (higher < k) correct++;
  }
  return correct;
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}
