/** The shape of a GEMM C[M][N] = A * B: its sizes and the strides that address A and B (gemm.ts). */

export interface GemmShape {
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly sam: number;
  readonly sak: number;
  readonly sbk: number;
  readonly sbn: number;
}

/** Strides for the common cases: C = op(A) op(B) with A stored [M][K] (or [K][M] if transA) and B stored [K][N] (or [N][K] if transB). */
export function gemmShape(M: number, N: number, K: number, transA = false, transB = false): GemmShape {
  return {
    M, N, K,
    sam: transA ? 1 : K,
    sak: transA ? M : 1,
    sbk: transB ? 1 : N,
    sbn: transB ? K : 1,
  };
}
