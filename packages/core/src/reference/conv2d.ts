/**
 * Plain float64 conv2d with groups, in layout CNHW ([channel][image][y][x]):
 * the reference the gpu.js kernels are checked against, and (with groups = 2)
 * the one-process definition of AlexNet's conv2, conv4 and conv5.
 * Weights [out][in/groups][k][k].
 */
export interface ConvParams {
  C: number; N: number; H: number; W: number;
  O: number; R: number; stride: number; pad: number; groups: number;
}

export function convOut(p: ConvParams): { OH: number; OW: number } {
  return {
    OH: Math.floor((p.H + 2 * p.pad - p.R) / p.stride) + 1,
    OW: Math.floor((p.W + 2 * p.pad - p.R) / p.stride) + 1,
  };
}

type Arr = ArrayLike<number>;

function forEachTap(p: ConvParams, f: (xi: number, wi: number, yi: number, o: number) => void): void {
  const { OH, OW } = convOut(p);
  const cg = p.C / p.groups;
  const og = p.O / p.groups;
  for (let o = 0; o < p.O; o++) {
    const g = Math.floor(o / og);
    for (let n = 0; n < p.N; n++) {
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          const yi = ((o * p.N + n) * OH + oy) * OW + ox;
          for (let ci = 0; ci < cg; ci++) {
            const c = g * cg + ci;
            for (let ky = 0; ky < p.R; ky++) {
              const iy = oy * p.stride + ky - p.pad;
              if (iy < 0 || iy >= p.H) continue;
              for (let kx = 0; kx < p.R; kx++) {
                const ix = ox * p.stride + kx - p.pad;
                if (ix < 0 || ix >= p.W) continue;
                f(((c * p.N + n) * p.H + iy) * p.W + ix, ((o * cg + ci) * p.R + ky) * p.R + kx, yi, o);
              }
            }
          }
        }
      }
    }
  }
}

export function conv2dForward(p: ConvParams, x: Arr, w: Arr, b: Arr): Float64Array {
  const { OH, OW } = convOut(p);
  const y = new Float64Array(p.O * p.N * OH * OW);
  for (let o = 0; o < p.O; o++) y.fill(b[o]!, o * p.N * OH * OW, (o + 1) * p.N * OH * OW);
  forEachTap(p, (xi, wi, yi) => {
    y[yi] += x[xi]! * w[wi]!;
  });
  return y;
}

export function conv2dBackward(p: ConvParams, x: Arr, w: Arr, dy: Arr): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(p.O);
  const { OH, OW } = convOut(p);
  for (let o = 0; o < p.O; o++) {
    for (let i = 0; i < p.N * OH * OW; i++) db[o] += dy[o * p.N * OH * OW + i]!;
  }
  forEachTap(p, (xi, wi, yi) => {
    dx[xi] += w[wi]! * dy[yi]!;
    dw[wi] += x[xi]! * dy[yi]!;
  });
  return { dx, dw, db };
}
