/**
 * How colour-specific a tower's first-layer kernels are, as one number per
 * tower (the paper's Figure 3: one tower's conv1 kernels came out largely
 * colour-agnostic, the other's colour-specific).
 *
 * Definition. Each RGB kernel w[c][y][x] (c = R, G, B) is rotated into an
 * orthonormal opponent colour basis at every pixel:
 *
 *   L  = (R + G + B) / sqrt(3)      luminance (grey)
 *   O1 = (R - G) / sqrt(2)          red-green
 *   O2 = (R + G - 2B) / sqrt(6)     yellow-blue
 *
 * The rotation keeps the energy, sum(R^2 + G^2 + B^2) = sum(L^2 + O1^2 + O2^2),
 * so a kernel's colour share
 *
 *   share = sum over pixels (O1^2 + O2^2) / sum over pixels (R^2 + G^2 + B^2)
 *
 * lies in 0..1: 0 for a grey kernel (R = G = B at every pixel, whatever its
 * spatial pattern), 1 for a kernel with no luminance at all (e.g. R = -G,
 * B = 0). A tower's score is the mean share of its kernels (the median is
 * given too). Kernels drawn at random (isotropic noise) score 2/3 on average:
 * two of the three directions are chroma; so "colour-agnostic" means well
 * below 2/3 and "colour-specific" above it. Weights are taken as they are
 * (no mean removed): a kernel's uniform grey part is luminance.
 */
import { median } from '@alexnet-mp/core';

const INV_SQRT2 = 1 / Math.SQRT2;
const INV_SQRT6 = 1 / Math.sqrt(6);

/** The colour share (see above) of one kernel, laid out [3][pixels] starting at `offset`; 0 for an all-zero kernel. */
export function kernelColourShare(w: ArrayLike<number>, offset: number, pixels: number): number {
  let energy = 0;
  let chroma = 0;
  for (let p = 0; p < pixels; p++) {
    const r = w[offset + p]!;
    const g = w[offset + pixels + p]!;
    const b = w[offset + 2 * pixels + p]!;
    energy += r * r + g * g + b * b;
    const o1 = (r - g) * INV_SQRT2;
    const o2 = (r + g - 2 * b) * INV_SQRT6;
    chroma += o1 * o1 + o2 * o2;
  }
  return energy > 0 ? chroma / energy : 0;
}

export interface ColourScore {
  /** Mean colour share of the kernels (0 grey .. 1 pure chroma; isotropic noise ~2/3). */
  readonly mean: number;
  readonly median: number;
  /** Each kernel's share, in kernel order. */
  readonly shares: Float64Array;
}

/**
 * The colour score of a layer's kernels on one tower: `weights` as [out][3][kh][kw] (conv1's layout, the
 * PyTorch one), `shape` = [out, in, kh, kw]. Throws unless the kernels have exactly 3 input channels (RGB).
 */
export function colourScore(weights: ArrayLike<number>, shape: readonly [number, number, number, number]): ColourScore {
  const [out, inCh, kh, kw] = shape;
  if (inCh !== 3) throw new Error(`a colour score needs RGB kernels (3 input channels); these have ${inCh}`);
  const pixels = kh * kw;
  if (weights.length !== out * 3 * pixels) throw new Error(`${weights.length} weights are not [${shape.join(', ')}]`);
  const shares = new Float64Array(out);
  for (let o = 0; o < out; o++) shares[o] = kernelColourShare(weights, o * 3 * pixels, pixels);
  const mean = out === 0 ? 0 : shares.reduce((s, x) => s + x, 0) / out;
  return { mean, median: median(shares), shares };
}
