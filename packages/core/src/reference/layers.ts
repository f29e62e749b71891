/**
 * Plain float64 references for the other AlexNet layers, in the same layouts
 * as the gpu.js kernels: activations CNHW, fc activations [feature][image],
 * logits [class][image].
 */
type Arr = ArrayLike<number>;

export function reluForward(x: Arr): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

export function reluBackward(y: Arr, dy: Arr): Float64Array {
  return Float64Array.from(dy, (g, i) => (y[i]! > 0 ? g : 0));
}

export interface LrnParams { C: number; plane: number; size: number; alpha: number; beta: number; k: number }

function lrnScale(p: LrnParams, a: Arr): Float64Array {
  const s = new Float64Array(a.length);
  const half = (p.size - 1) / 2;
  for (let c = 0; c < p.C; c++) {
    for (let i = 0; i < p.plane; i++) {
      let sum = 0;
      for (let j = Math.max(0, c - half); j <= Math.min(p.C - 1, c + half); j++) sum += a[j * p.plane + i]! ** 2;
      s[c * p.plane + i] = p.k + p.alpha * sum;
    }
  }
  return s;
}

/** b = a (k + alpha sum a_j^2)^-beta, alpha not divided by n (the paper's convention). */
export function lrnForward(p: LrnParams, a: Arr): Float64Array {
  const s = lrnScale(p, a);
  return Float64Array.from(a, (v, i) => v * s[i]! ** -p.beta);
}

export function lrnBackward(p: LrnParams, a: Arr, dy: Arr): Float64Array {
  const s = lrnScale(p, a);
  const half = (p.size - 1) / 2;
  const da = new Float64Array(a.length);
  for (let c = 0; c < p.C; c++) {
    for (let i = 0; i < p.plane; i++) {
      const idx = c * p.plane + i;
      let sum = 0;
      for (let j = Math.max(0, c - half); j <= Math.min(p.C - 1, c + half); j++) {
        const jj = j * p.plane + i;
        sum += (dy[jj]! * a[jj]! * s[jj]! ** -p.beta) / s[jj]!;
      }
      da[idx] = dy[idx]! * s[idx]! ** -p.beta - 2 * p.alpha * p.beta * a[idx]! * sum;
    }
  }
  return da;
}

export interface PoolParams { CN: number; H: number; W: number; K: number; S: number }

export function poolOut(p: PoolParams): { OH: number; OW: number } {
  return { OH: Math.floor((p.H - p.K) / p.S) + 1, OW: Math.floor((p.W - p.K) / p.S) + 1 };
}

/** Max-pool; `arg` is the flat input index of each window's first maximum. */
export function maxPoolForward(p: PoolParams, x: Arr): { y: Float64Array; arg: Int32Array } {
  const { OH, OW } = poolOut(p);
  const y = new Float64Array(p.CN * OH * OW);
  const arg = new Int32Array(y.length);
  for (let cn = 0; cn < p.CN; cn++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        let best = -Infinity;
        let bi = -1;
        for (let ky = 0; ky < p.K; ky++) {
          for (let kx = 0; kx < p.K; kx++) {
            const i = (cn * p.H + oy * p.S + ky) * p.W + ox * p.S + kx;
            if (x[i]! > best) { best = x[i]!; bi = i; }
          }
        }
        const o = (cn * OH + oy) * OW + ox;
        y[o] = best;
        arg[o] = bi;
      }
    }
  }
  return { y, arg };
}

export function maxPoolBackward(p: PoolParams, x: Arr, dy: Arr): Float64Array {
  const { arg } = maxPoolForward(p, x);
  const dx = new Float64Array(p.CN * p.H * p.W);
  for (let o = 0; o < arg.length; o++) dx[arg[o]!] += dy[o]!;
  return dx;
}

/** Fully connected: y[o][n] = sum_k w[o][k] x[k][n] + b[o]. */
export function fcForward(O: number, K: number, N: number, x: Arr, w: Arr, b: Arr): Float64Array {
  const y = new Float64Array(O * N);
  for (let o = 0; o < O; o++) {
    for (let n = 0; n < N; n++) {
      let s = b[o]!;
      for (let k = 0; k < K; k++) s += w[o * K + k]! * x[k * N + n]!;
      y[o * N + n] = s;
    }
  }
  return y;
}

export function fcBackward(O: number, K: number, N: number, x: Arr, w: Arr, dy: Arr): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const dx = new Float64Array(K * N);
  const dw = new Float64Array(O * K);
  const db = new Float64Array(O);
  for (let o = 0; o < O; o++) {
    for (let n = 0; n < N; n++) {
      const g = dy[o * N + n]!;
      db[o] += g;
      for (let k = 0; k < K; k++) {
        dw[o * K + k] += g * x[k * N + n]!;
        dx[k * N + n] += g * w[o * K + k]!;
      }
    }
  }
  return { dx, dw, db };
}

export function dropoutForward(x: Arr, mask: Arr): Float64Array {
  return Float64Array.from(x, (v, i) => v * mask[i]!);
}

/** Mean softmax cross-entropy over the batch, logits [class][image], and its gradient. */
export function softmaxCrossEntropy(C: number, N: number, z: Arr, labels: ArrayLike<number>): { loss: number; losses: Float64Array; dz: Float64Array } {
  const losses = new Float64Array(N);
  const dz = new Float64Array(C * N);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, z[c * N + n]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(z[c * N + n]! - m);
    losses[n] = Math.log(s) + m - z[labels[n]! * N + n]!;
    for (let c = 0; c < C; c++) dz[c * N + n] = (Math.exp(z[c * N + n]! - m) / s - (c === labels[n] ? 1 : 0)) / N;
  }
  return { loss: losses.reduce((a, b) => a + b, 0) / N, losses, dz };
}

/** v <- momentum v - wd lr w - lr g ; w <- w + v */
export function sgdStep(w: Arr, v: Arr, g: Arr, lr: number, momentum: number, weightDecay: number): { w: Float64Array; v: Float64Array } {
  const vn = Float64Array.from(v, (vi, i) => momentum * vi - weightDecay * lr * w[i]! - lr * g[i]!);
  return { w: Float64Array.from(w, (wi, i) => wi + vn[i]!), v: vn };
}
