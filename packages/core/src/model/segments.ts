/**
 * A tower's layers cut at the crossing points: a segment starts at a layer
 * whose input is the image or both towers' outputs, and runs up to the next
 * such layer. Between two segments the towers exchange their outputs (going
 * forward) and the matching input gradients (going back); within a segment a
 * tower works alone.
 */
import type { ModelSpec } from './spec.js';
import { planModel, shapeSize, type LayerPlan, type Shape3 } from './shapes.js';

export interface Segment {
  readonly index: number;
  readonly plans: readonly LayerPlan[];
  /** 'image' for the first segment; 'both' where the input is the concatenation of both towers' previous outputs. */
  readonly input: 'image' | 'both';
  /** Name of the layer whose output this segment receives from both towers (e.g. pool2 for conv3). */
  readonly crossing: string | null;
  /** Per-tower shape of the segment's output. */
  readonly outShape: Shape3;
  /** Only tower 0 runs it (the classifier). */
  readonly tower0Only: boolean;
}

/** A crossing is named after the layer whose output crosses: the last one that is not an elementwise ReLU or dropout. */
function crossingName(plans: readonly LayerPlan[]): string {
  for (let i = plans.length - 1; i >= 0; i--) {
    const t = plans[i]!.layer.type;
    if (t !== 'relu' && t !== 'dropout') return plans[i]!.layer.name;
  }
  return plans[plans.length - 1]!.layer.name;
}

export function segmentModel(spec: ModelSpec): Segment[] {
  const plans = planModel(spec);
  const segments: Segment[] = [];
  let cur: LayerPlan[] = [];
  const flush = () => {
    if (cur.length === 0) return;
    const first = cur[0]!.layer;
    const input = first.type === 'conv' && first.input === 'image' ? 'image' : 'both';
    const prevSeg = segments[segments.length - 1];
    segments.push({
      index: segments.length,
      plans: cur,
      input,
      crossing: prevSeg ? crossingName(prevSeg.plans) : null,
      outShape: cur[cur.length - 1]!.outShape,
      tower0Only: cur.some((p) => p.tower0Only),
    });
    cur = [];
  };
  for (const p of plans) {
    const l = p.layer;
    if ((l.type === 'conv' || l.type === 'fc') && (l.input === 'both' || l.input === 'image')) flush();
    cur.push(p);
  }
  flush();
  return segments;
}

/** Floats that one tower sends at each crossing for a batch (the same going forward and, as gradient, coming back). */
export function crossingSizes(spec: ModelSpec, batch: number): { name: string; floats: number }[] {
  return segmentModel(spec)
    .filter((s) => s.crossing !== null)
    .map((s) => {
      const prev = segmentModel(spec)[s.index - 1]!;
      return { name: s.crossing!, floats: shapeSize(prev.outShape) * batch };
    });
}

/** The index of the segment that computes layer `layer` (-1 when the model has no such layer). */
export function segmentOfLayer(segments: readonly Segment[], layer: string): number {
  return segments.findIndex((s) => s.plans.some((p) => p.layer.name === layer));
}
