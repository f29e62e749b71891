/** Top-k accuracy from logits laid out [class][image]. */
export function topKCorrect(logits: Float32Array, labels: ArrayLike<number>, classes: number, k: number): number {
  const N = labels.length;
  let correct = 0;
  for (let n = 0; n < N; n++) {
    const target = logits[labels[n]! * N + n]!;
    let higher = 0;
    for (let c = 0; c < classes; c++) if (logits[c * N + n]! > target) higher++;
    if (higher < k) correct++;
  }
  return correct;
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}
