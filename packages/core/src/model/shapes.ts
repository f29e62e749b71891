import type { LayerSpec, ModelSpec, ParamLayer } from './spec.js';
import { isParamLayer } from './spec.js';

/** A per-tower activation shape: channels x height x width (fc outputs are C x 1 x 1). */
export interface Shape3 {
  readonly c: number;
  readonly h: number;
  readonly w: number;
}

export interface LayerPlan {
  readonly layer: LayerSpec;
  /** Shape of this layer's input on one tower (for `input: 'both'`, the concatenation of both towers). */
  readonly inShape: Shape3;
  /** Shape of this layer's output on one tower. */
  readonly outShape: Shape3;
  /** True on layers that only tower 0 computes (the classifier). */
  readonly tower0Only: boolean;
}

export function convOutSize(inSize: number, size: number, stride: number, pad: number): number {
  return Math.floor((inSize + 2 * pad - size) / stride) + 1;
}

export function poolOutSize(inSize: number, size: number, stride: number): number {
  return Math.floor((inSize - size) / stride) + 1;
}

/** Walks the layer list and gives every layer its per-tower input and output shape. */
export function planModel(spec: ModelSpec): LayerPlan[] {
  let cur: Shape3 = { c: spec.inputChannels, h: spec.inputSize, w: spec.inputSize };
  const plans: LayerPlan[] = [];
  for (const layer of spec.layers) {
    let inShape = cur;
    let out: Shape3;
    switch (layer.type) {
      case 'conv': {
        if (layer.input === 'both') inShape = { ...cur, c: cur.c * spec.towers };
        const h = convOutSize(inShape.h, layer.size, layer.stride, layer.pad);
        const w = convOutSize(inShape.w, layer.size, layer.stride, layer.pad);
        if (h < 1 || w < 1) throw new Error(`${spec.name}: ${layer.name} has no output (input ${inShape.h}x${inShape.w})`);
        out = { c: layer.filtersPerTower, h, w };
        break;
      }
      case 'fc':
        if (layer.input === 'both') inShape = { ...cur, c: cur.c * spec.towers };
        out = { c: layer.unitsPerTower, h: 1, w: 1 };
        break;
      case 'maxpool': {
        const h = poolOutSize(cur.h, layer.size, layer.stride);
        const w = poolOutSize(cur.w, layer.size, layer.stride);
        if (h < 1 || w < 1) throw new Error(`${spec.name}: ${layer.name} has no output (input ${cur.h}x${cur.w})`);
        out = { c: cur.c, h, w };
        break;
      }
      default:
        out = cur;
    }
    const tower0Only = layer.type === 'fc' && layer.classifier === true;
    plans.push({ layer, inShape, outShape: out, tower0Only });
    cur = out;
  }
  return plans;
}

export function shapeSize(s: Shape3): number {
  return s.c * s.h * s.w;
}

/** Weight shape of one tower's part of a parameter layer: [out, in, kh, kw] (fc: kh = in h, kw = in w). */
export function weightShape(p: LayerPlan): [number, number, number, number] {
  const l = p.layer as ParamLayer;
  if (l.type === 'conv') return [l.filtersPerTower, p.inShape.c, l.size, l.size];
  return [l.unitsPerTower, p.inShape.c, p.inShape.h, p.inShape.w];
}

export interface ParamCount {
  readonly layer: string;
  readonly weights: number;
  readonly biases: number;
}

/** Exact parameter count of the whole two-tower model, per layer (both towers together). */
export function countParameters(spec: ModelSpec): { perLayer: ParamCount[]; total: number } {
  const perLayer: ParamCount[] = [];
  for (const p of planModel(spec)) {
    if (!isParamLayer(p.layer)) continue;
    const [o, i, kh, kw] = weightShape(p);
    const towers = p.tower0Only ? 1 : spec.towers;
    perLayer.push({ layer: p.layer.name, weights: towers * o * i * kh * kw, biases: towers * o });
  }
  return { perLayer, total: perLayer.reduce((s, c) => s + c.weights + c.biases, 0) };
}

/** Multiply-adds of one image's forward pass, both towers. */
export function forwardMacs(spec: ModelSpec): number {
  let macs = 0;
  for (const p of planModel(spec)) {
    if (!isParamLayer(p.layer)) continue;
    const [o, i, kh, kw] = weightShape(p);
    const towers = p.tower0Only ? 1 : spec.towers;
    macs += towers * o * i * kh * kw * p.outShape.h * p.outShape.w;
  }
  return macs;
}
