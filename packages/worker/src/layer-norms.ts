/**
 * Each layer's norms after a step (StepRequest.layer_norms): the L2 norms of its weights, of the step's change of
 * them and of its biases, summed in float64. The paper's update is v <- momentum v - weightDecay lr w - lr dL/dw,
 * w <- w + v: the momentum v after the step is exactly the step's change of w. The update-to-weight ratio
 * |v| / |w| is the usual check of a learning rate (about 1e-3 is healthy); a layer whose ratio collapses has
 * stopped learning.
 */
import { towerParamLayers, type ModelSpec, type TowerIndex, type TowerParams } from '@alexnet-mp/core';
import type { LayerNorms } from './messages.js';

const norm = (x: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
};

/** The norms of every layer with parameters on `tower`, in model order. */
export function layerNorms(spec: ModelSpec, tower: TowerIndex, params: TowerParams): LayerNorms[] {
  return towerParamLayers(spec, tower).map(({ name }) => {
    const p = params.get(name)!;
    return { layer: name, weight_norm: norm(p.w), update_norm: norm(p.vw), bias_norm: norm(p.b) };
  });
}
