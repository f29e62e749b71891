/**
 * The model as a table, a row per layer, as the paper's Figure 2 draws it: what the layer does (kernel,
 * stride, padding; LRN's constants; the dropout rate), whether it reads its own tower or both, its input
 * and output on one tower, how many towers compute it, and its weights, biases and multiply-adds per image
 * (both towers). `alexnet params` prints it.
 */
import { planModel, weightShape, type LayerPlan } from './shapes.js';
import type { ModelSpec } from './spec.js';

export interface LayerRow {
  readonly layer: string;
  readonly type: string;
  /** "11x11 /4 pad 2", "3x3 /2", "n 5, alpha 0.0001, beta 0.75, k 2", "rate 0.5", or "". */
  readonly op: string;
  /** The layer's input: its own tower's previous layer, or both towers' (a crossing). */
  readonly input: 'own' | 'both';
  /** [channels, height, width] on one tower (input: both towers' together where it reads both). */
  readonly inShape: readonly [number, number, number];
  readonly outShape: readonly [number, number, number];
  readonly towers: 1 | 2;
  /** Both towers. */
  readonly weights: number;
  readonly biases: number;
  /** Multiply-adds of one image's forward pass, both towers (conv and fc; 0 for the others). */
  readonly macs: number;
}

function opOf(p: LayerPlan): string {
  const l = p.layer;
  switch (l.type) {
    case 'conv':
      return `${l.size}x${l.size} /${l.stride}${l.pad > 0 ? ` pad ${l.pad}` : ''}`;
    case 'maxpool':
      return `${l.size}x${l.size} /${l.stride}`;
    case 'lrn':
      return `n ${l.size}, alpha ${l.alpha}, beta ${l.beta}, k ${l.k}`;
    case 'dropout':
      return `rate ${l.rate}`;
    default:
      return '';
  }
}

export function layerTable(spec: ModelSpec): LayerRow[] {
  return planModel(spec).map((p) => {
    const l = p.layer;
    const towers = p.tower0Only ? 1 : 2;
    const params = l.type === 'conv' || l.type === 'fc';
    const [o, i, kh, kw] = params ? weightShape(p) : [0, 0, 0, 0];
    return {
      layer: l.name,
      type: l.type,
      op: opOf(p),
      input: (l.type === 'conv' || l.type === 'fc') && l.input === 'both' ? 'both' : 'own',
      inShape: [p.inShape.c, p.inShape.h, p.inShape.w],
      outShape: [p.outShape.c, p.outShape.h, p.outShape.w],
      towers,
      weights: towers * o * i * kh * kw,
      biases: towers * o,
      macs: towers * o * i * kh * kw * p.outShape.h * p.outShape.w,
    };
  });
}
