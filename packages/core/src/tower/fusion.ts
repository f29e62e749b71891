/**
 * Which layers of a segment run inside another layer's kernels, decided once from the layer types.
 * Every fusion computes the same floats as the layers run one by one (see each kernel's comment):
 * - a conv or fc layer followed by ReLU applies max(0, .) in its GEMM, so the ReLU's forward is free;
 * - an fc layer followed by ReLU and dropout also multiplies by the dropout mask in its GEMM
 *   (max(0, z) * mask, the two products the layers made), so the dropout's forward is free too;
 * - a ReLU followed by LRN, max-pool or dropout has its backward folded into that layer's backward
 *   kernel, which reads the ReLU's output anyway (LRN, dropout) or once per cell (max-pool):
 *   the gradient passes where that output is positive, as the ReLU's own kernel did.
 * A ReLU's output is the next layer's input and stays on the device until the backward, so every
 * consumer of it (the next layer's forward and backward) still reads it.
 */
import type { LayerSpec } from '../model/spec.js';

export interface LayerFusion {
  /** conv, fc: max(0, .) applied in the GEMM (the next layer is a ReLU). */
  readonly reluOut: boolean;
  /** fc: the GEMM's output multiplied by the mask of the dropout two layers on (fc -> relu -> dropout). */
  readonly dropoutOut: boolean;
  /** relu: the forward is done by the GEMM before it. */
  readonly reluForwardFused: boolean;
  /** relu: the backward is done by the next layer's backward kernel. */
  readonly reluBackwardFolded: boolean;
  /** lrn, maxpool, dropout: the input is a ReLU's output and this layer's backward folds in the ReLU's. */
  readonly reluBefore: boolean;
  /** dropout: the forward is done by the fc GEMM two layers back. */
  readonly dropoutForwardFused: boolean;
}

const foldsReluBackward = new Set<LayerSpec['type']>(['lrn', 'maxpool', 'dropout']);

/** The fusions of one segment's layers, in order. */
export function planFusion(layers: readonly LayerSpec[]): LayerFusion[] {
  const type = (i: number): LayerSpec['type'] | null => layers[i]?.type ?? null;
  const gemm = (i: number) => type(i) === 'conv' || type(i) === 'fc';
  return layers.map((l, i) => ({
    reluOut: gemm(i) && type(i + 1) === 'relu',
    dropoutOut: l.type === 'fc' && type(i + 1) === 'relu' && type(i + 2) === 'dropout',
    reluForwardFused: l.type === 'relu' && gemm(i - 1),
    reluBackwardFolded: l.type === 'relu' && foldsReluBackward.has(type(i + 1)!),
    reluBefore: foldsReluBackward.has(l.type) && type(i - 1) === 'relu',
    dropoutForwardFused: l.type === 'dropout' && type(i - 1) === 'relu' && type(i - 2) === 'fc',
  }));
}
