/**
 * Training-set colour statistics: the per-channel mean (subtracted from
 * every pixel) and the 3x3 RGB covariance with its eigenvectors p_i and
 * eigenvalues l_i (the paper's PCA colour noise, augment.ts).
 *
 * Units, stated because the paper leaves them open: the mean is in pixel
 * levels (0..255); the covariance, and so the eigenvalues, are of pixel values
 * scaled to 0..1, the convention of the published ImageNet values
 * (eigenvalues 0.2175, 0.0188, 0.0045 in fb.resnet.torch and torchvision's
 * references). With a_i ~ N(0, 0.1) the noise along p_1 then has a standard
 * deviation of about 0.02, i.e. ~5.5 pixel levels; taken in 0..255 units the
 * same formula would add noise of ~1000 levels, which is not what was meant.
 */

export interface ChannelStats {
  /** Images the statistics were computed over. */
  readonly images: number;
  /** Per-channel mean, R, G, B, in pixel levels 0..255. */
  readonly mean: readonly [number, number, number];
  /** RGB covariance of pixel values scaled to 0..1, row-major 3x3. */
  readonly covariance: readonly number[];
  /** Eigenvalues of the covariance, largest first (0..1 units). */
  readonly eigenvalues: readonly [number, number, number];
  /** Eigenvectors as the columns of a row-major 3x3 matrix P: p_i = (P[0][i], P[1][i], P[2][i]), unit length. */
  readonly eigenvectors: readonly number[];
}

/** ChannelStatsAccumulator's sums, as JSON. */
export interface AccumulatorState {
  readonly n: number;
  readonly pixels: number;
  readonly s: readonly number[];
  readonly ss: readonly number[];
}

/** Accumulates pixel sums over CHW uint8 images (exact integer sums in float64). */
export class ChannelStatsAccumulator {
  private n = 0;
  private pixels = 0;
  private readonly s = new Float64Array(3);
  /** rr, gg, bb, rg, rb, gb */
  private readonly ss = new Float64Array(6);

  add(img: Uint8Array, pixels: number): void {
    let r = 0, g = 0, b = 0, rr = 0, gg = 0, bb = 0, rg = 0, rb = 0, gb = 0;
    // chunked so the integer partial sums stay exact in doubles
    for (let p = 0; p < pixels; p++) {
      const R = img[p]!, G = img[pixels + p]!, B = img[2 * pixels + p]!;
      r += R; g += G; b += B;
      rr += R * R; gg += G * G; bb += B * B;
      rg += R * G; rb += R * B; gb += G * B;
    }
    this.s[0] += r; this.s[1] += g; this.s[2] += b;
    this.ss[0] += rr; this.ss[1] += gg; this.ss[2] += bb;
    this.ss[3] += rg; this.ss[4] += rb; this.ss[5] += gb;
    this.n++;
    this.pixels += pixels;
  }

  get images(): number {
    return this.n;
  }

  /** The sums so far, to carry on from (an interrupted decoding's journal: partial-decode.ts). */
  state(): AccumulatorState {
    return { n: this.n, pixels: this.pixels, s: [...this.s], ss: [...this.ss] };
  }

  /** An accumulator carrying on from `state` (the same sums: the statistics come out as if never interrupted). */
  static from(state: AccumulatorState): ChannelStatsAccumulator {
    const a = new ChannelStatsAccumulator();
    a.n = state.n;
    a.pixels = state.pixels;
    a.s.set(state.s);
    a.ss.set(state.ss);
    return a;
  }

  finish(): ChannelStats {
    if (this.pixels === 0) throw new Error('no pixels to compute statistics over');
    const N = this.pixels;
    const m = [this.s[0]! / N, this.s[1]! / N, this.s[2]! / N] as const;
    const c = (ij: number, i: number, j: number) => (this.ss[ij]! / N - m[i]! * m[j]!) / (255 * 255);
    const rr = c(0, 0, 0), gg = c(1, 1, 1), bb = c(2, 2, 2), rg = c(3, 0, 1), rb = c(4, 0, 2), gb = c(5, 1, 2);
    const covariance = [rr, rg, rb, rg, gg, gb, rb, gb, bb];
    const { values, vectors } = symmetricEigen3(covariance);
    return { images: this.n, mean: [m[0], m[1], m[2]], covariance, eigenvalues: values, eigenvectors: vectors };
  }
}

/**
 * Eigen-decomposition of a symmetric 3x3 matrix (row-major) by cyclic Jacobi
 * rotations: eigenvalues largest first, eigenvectors as the columns of P
 * (row-major), each with its largest component positive (a fixed sign, so
 * cached statistics compare equal).
 */
export function symmetricEigen3(m: readonly number[]): { values: [number, number, number]; vectors: number[] } {
  const a = [[m[0]!, m[1]!, m[2]!], [m[3]!, m[4]!, m[5]!], [m[6]!, m[7]!, m[8]!]];
  const v = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = a[0]![1]! ** 2 + a[0]![2]! ** 2 + a[1]![2]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < 2; p++) {
      for (let q = p + 1; q < 3; q++) {
        const apq = a[p]![q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < 3; k++) {
          // A <- A J (columns p, q)
          const akp = a[k]![p]!, akq = a[k]![q]!;
          a[k]![p] = c * akp - s * akq;
          a[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < 3; k++) {
          // A <- J^T A (rows p, q)
          const apk = a[p]![k]!, aqk = a[q]![k]!;
          a[p]![k] = c * apk - s * aqk;
          a[q]![k] = s * apk + c * aqk;
        }
        for (let k = 0; k < 3; k++) {
          const vkp = v[k]![p]!, vkq = v[k]![q]!;
          v[k]![p] = c * vkp - s * vkq;
          v[k]![q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = [0, 1, 2].sort((i, j) => a[j]![j]! - a[i]![i]!);
  const values = order.map((i) => a[i]![i]!) as [number, number, number];
  const vectors = new Array<number>(9);
  order.forEach((col, i) => {
    let big = 0;
    for (let k = 0; k < 3; k++) if (Math.abs(v[k]![col]!) > Math.abs(v[big]![col]!)) big = k;
    const sign = v[big]![col]! < 0 ? -1 : 1;
    for (let k = 0; k < 3; k++) vectors[k * 3 + i] = sign * v[k]![col]!;
  });
  return { values, vectors };
}

/**
 * The PCA colour shift of one image, in pixel levels (0..255), for noise
 * coefficients `alpha` (a_i ~ N(0, 0.1), drawn once per image per use):
 * 255 * [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T, added to every pixel.
 */
export function pcaShift(alpha: ArrayLike<number>, stats: Pick<ChannelStats, 'eigenvalues' | 'eigenvectors'>): [number, number, number] {
  const P = stats.eigenvectors;
  const l = stats.eigenvalues;
  const out: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let i = 0; i < 3; i++) s += P[c * 3 + i]! * alpha[i]! * l[i]!;
    out[c] = 255 * s;
  }
  return out;
}
