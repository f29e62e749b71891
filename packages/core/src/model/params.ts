/**
 * One tower's parameters and momentum, initialised as in the paper:
 * weights N(0, std^2), biases 1 in conv2, conv4, conv5, fc6, fc7 and 0 elsewhere.
 * Each (layer, tower) draws from its own seeded stream, so the one-process and
 * the two-worker runs start from the same numbers.
 */
import type { ModelSpec, TowerIndex } from './spec.js';
import { isParamLayer } from './spec.js';
import { planModel, weightShape } from './shapes.js';
import { Rng, deriveSeed } from '../random.js';

export interface LayerParams {
  w: Float32Array;
  b: Float32Array;
  /** Momentum (the paper's v) of w and b. */
  vw: Float32Array;
  vb: Float32Array;
}

export type TowerParams = Map<string, LayerParams>;

/** Layers with parameters on this tower, in model order, with their weight shapes. */
export function towerParamLayers(spec: ModelSpec, tower: TowerIndex): { name: string; shape: [number, number, number, number]; biasInit: number; index: number; classifier: boolean }[] {
  const out = [];
  const plans = planModel(spec);
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i]!;
    if (!isParamLayer(p.layer) || (p.tower0Only && tower !== 0)) continue;
    out.push({ name: p.layer.name, shape: weightShape(p), biasInit: p.layer.biasInit, index: i, classifier: p.layer.type === 'fc' && p.layer.classifier === true });
  }
  return out;
}

/**
 * The standard deviation of a layer's initial weights: the preset's number
 * (the paper: 0.01 everywhere), or 'he', sqrt(2 / fan_in) with fan_in the
 * inputs of one output unit (He et al. 2015), which keeps the signal's size
 * through every ReLU layer whatever the widths.
 */
export function initStdOf(spec: ModelSpec, shape: readonly [number, number, number, number], classifier = false): number {
  if (spec.initStd === 'he') return classifier ? 0.01 : Math.sqrt(2 / (shape[1] * shape[2] * shape[3]));
  return spec.initStd;
}

export function initTowerParams(spec: ModelSpec, tower: TowerIndex, seed: number): TowerParams {
  const params: TowerParams = new Map();
  for (const l of towerParamLayers(spec, tower)) {
    const rng = new Rng(deriveSeed(seed, 0x1417, l.index, tower));
    const size = l.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(size);
    const std = initStdOf(spec, l.shape, l.classifier);
    for (let i = 0; i < size; i++) w[i] = rng.normal() * std;
    const b = new Float32Array(l.shape[0]).fill(l.biasInit);
    params.set(l.name, { w, b, vw: new Float32Array(size), vb: new Float32Array(l.shape[0]) });
  }
  return params;
}
