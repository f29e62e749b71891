/**
 * Which layers can be inspected, and their shapes on one tower: kernels for
 * conv layers, feature maps (activations) for any layer a tower computes.
 * A wrong name is a UserError that lists the right ones.
 */
import { planModel, towerParamLayers, type ModelSpec, type TowerIndex } from '@alexnet-mp/core';
import { UserError } from '../cli/errors.js';

/** The conv layers of a preset (the layers `inspect kernels` draws). */
export function kernelLayers(spec: ModelSpec): string[] {
  return spec.layers.filter((l) => l.type === 'conv').map((l) => l.name);
}

/** Checks a layer name for `inspect kernels`; returns one tower's weight shape [out, in, kh, kw] (the same on both). */
export function kernelShape(spec: ModelSpec, layer: string): [number, number, number, number] {
  const names = kernelLayers(spec);
  if (!names.includes(layer)) {
    const known = spec.layers.some((l) => l.name === layer);
    throw new UserError(`${known ? `layer ${layer} has no kernels` : `no layer "${layer}" in preset ${spec.name}`}: kernels are drawn for the conv layers, ${names.join(', ')}`);
  }
  return towerParamLayers(spec, 0).find((l) => l.name === layer)!.shape;
}

/**
 * Checks a layer name for `inspect activations`; returns one tower's output shape for one image [C, H, W]
 * (fc layers: [units, 1, 1]) and which towers compute it (the classifier: tower 0 only).
 */
export function mapShape(spec: ModelSpec, layer: string): { shape: [number, number, number]; towers: TowerIndex[] } {
  const plan = planModel(spec).find((p) => p.layer.name === layer);
  if (!plan) throw new UserError(`no layer "${layer}" in preset ${spec.name}: choose one of ${spec.layers.map((l) => l.name).join(', ')}`);
  const o = plan.outShape;
  return { shape: [o.c, o.h, o.w], towers: plan.tower0Only ? [0] : [0, 1] };
}
