/**
 * A step line's layer_norms (per tower, StepReply.layer_norms) taken layer by layer over both towers: the norms of
 * the layer's whole weight tensor, of its change and of its biases (each tower holds a part: the squares add). The
 * dashboard's update/weight chart and export-metrics' norms/ scalars read them so.
 */
import type { LayerNormsRow } from './coordinator-types.js';

export interface LayerNormsTotal {
  readonly layer: string;
  readonly weight: number;
  readonly update: number;
  readonly bias: number;
  /** update / weight: the update-to-weight ratio; null for weights of norm 0. */
  readonly ratio: number | null;
}

/** Each layer's norms over both towers, in the order the layers first appear. */
export function layerNormTotals(rows: readonly LayerNormsRow[]): LayerNormsTotal[] {
  const by = new Map<string, { weight: number; update: number; bias: number }>();
  for (const r of rows) {
    const l = by.get(r.layer) ?? { weight: 0, update: 0, bias: 0 };
    l.weight += r.weight * r.weight;
    l.update += r.update * r.update;
    l.bias += r.bias * r.bias;
    by.set(r.layer, l);
  }
  return [...by.entries()].map(([layer, l]) => {
    const [weight, update] = [Math.sqrt(l.weight), Math.sqrt(l.update)];
    return { layer, weight, update, bias: Math.sqrt(l.bias), ratio: weight > 0 ? update / weight : null };
  });
}
