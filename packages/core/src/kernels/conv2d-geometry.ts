/** Shapes shared by conv2d's forward and backward passes, and how a batch is cut into im2col chunks. */
import type { ConvGeometry } from './im2col.js';

export interface Conv2dShape {
  readonly C: number;
  readonly N: number;
  readonly H: number;
  readonly W: number;
  readonly O: number;
  readonly R: number;
  readonly stride: number;
  readonly pad: number;
}

export interface ConvChunking {
  readonly OH: number;
  readonly OW: number;
  /** Images per chunk, and the chunks' starts. */
  readonly chunk: number;
  readonly starts: readonly number[];
  geometry(n: number): ConvGeometry;
}

/**
 * Cuts the batch into chunks whose im2col buffer holds at most maxColFloats (Device.maxKernelFloats:
 * on webasm 2^24, on webgpu the GPU's largest binding; the paper's conv1 needs 1.1 M floats an image).
 */
export function chunkConv(s: Conv2dShape, maxColFloats: number): ConvChunking {
  const OH = Math.floor((s.H + 2 * s.pad - s.R) / s.stride) + 1;
  const OW = Math.floor((s.W + 2 * s.pad - s.R) / s.stride) + 1;
  const perImage = s.C * s.R * s.R * OH * OW;
  const chunk = Math.max(1, Math.min(s.N, Math.floor(maxColFloats / perImage)));
  const starts: number[] = [];
  for (let n0 = 0; n0 < s.N; n0 += chunk) starts.push(n0);
  return {
    OH, OW, chunk, starts,
    geometry: (n: number) => ({ C: s.C, N: n, NT: s.N, H: s.H, W: s.W, R: s.R, S: s.stride, P: s.pad, OH, OW }),
  };
}

/** Copies rows [o][n0*plane .. (n0+n)*plane) of a [O][N*plane] array out (or back in, with `into`). */
export function sliceImages(src: Float32Array, O: number, N: number, plane: number, n0: number, n: number): Float32Array {
  if (n0 === 0 && n === N) return src;
  const out = new Float32Array(O * n * plane);
  for (let o = 0; o < O; o++) out.set(src.subarray((o * N + n0) * plane, (o * N + n0 + n) * plane), o * n * plane);
  return out;
}

export function placeImages(dst: Float32Array, part: Float32Array, O: number, N: number, plane: number, n0: number, n: number): void {
  for (let o = 0; o < O; o++) dst.set(part.subarray(o * n * plane, (o + 1) * n * plane), (o * N + n0) * plane);
}
