import type { LayerSpec, ModelSpec } from './spec.js';

/** The paper's LRN: k=2, n=5, alpha=1e-4, beta=0.75 (alpha not divided by n). */
const lrn = (name: string): LayerSpec => ({ type: 'lrn', name, size: 5, alpha: 1e-4, beta: 0.75, k: 2 });
const relu = (name: string): LayerSpec => ({ type: 'relu', name });
const pool = (name: string): LayerSpec => ({ type: 'maxpool', name, size: 3, stride: 2 });
const drop = (name: string): LayerSpec => ({ type: 'dropout', name, rate: 0.5 });

interface Widths {
  conv: readonly [number, number, number, number, number];
  sizes: readonly [number, number, number, number, number];
  conv1: { stride: number; pad: number };
  fc: number;
  /** The paper's biases of 1 in conv2, conv4, conv5, fc6 and fc7 (else all biases 0). */
  onesBiases: boolean;
}

/** The AlexNet graph with the given per-tower widths: the same connections in every preset. */
function alexnetLayers(w: Widths, classes: number): LayerSpec[] {
  const [c1, c2, c3, c4, c5] = w.conv;
  const [k1, k2, k3, k4, k5] = w.sizes;
  const one = w.onesBiases ? 1 : 0;
  return [
    { type: 'conv', name: 'conv1', filtersPerTower: c1, size: k1, stride: w.conv1.stride, pad: w.conv1.pad, input: 'image', biasInit: 0 },
    relu('relu1'), lrn('lrn1'), pool('pool1'),
    { type: 'conv', name: 'conv2', filtersPerTower: c2, size: k2, stride: 1, pad: (k2 - 1) / 2, input: 'own', biasInit: one },
    relu('relu2'), lrn('lrn2'), pool('pool2'),
    { type: 'conv', name: 'conv3', filtersPerTower: c3, size: k3, stride: 1, pad: (k3 - 1) / 2, input: 'both', biasInit: 0 },
    relu('relu3'),
    { type: 'conv', name: 'conv4', filtersPerTower: c4, size: k4, stride: 1, pad: (k4 - 1) / 2, input: 'own', biasInit: one },
    relu('relu4'),
    { type: 'conv', name: 'conv5', filtersPerTower: c5, size: k5, stride: 1, pad: (k5 - 1) / 2, input: 'own', biasInit: one },
    relu('relu5'), pool('pool5'),
    { type: 'fc', name: 'fc6', unitsPerTower: w.fc, input: 'both', biasInit: one },
    relu('relu6'), drop('drop6'),
    { type: 'fc', name: 'fc7', unitsPerTower: w.fc, input: 'both', biasInit: one },
    relu('relu7'), drop('drop7'),
    { type: 'fc', name: 'fc8', unitsPerTower: classes, input: 'both', biasInit: 0, classifier: true },
  ];
}

/** Krizhevsky et al. 2012, Figure 2: 224x224 input (conv1 pad 2, torchvision's convention), 1000 classes. */
export const paper: ModelSpec = {
  name: 'paper',
  inputSize: 224,
  inputChannels: 3,
  classes: 1000,
  towers: 2,
  initStd: 0.01,
  inputScale: 1,
  layers: alexnetLayers({ conv: [48, 128, 192, 192, 128], sizes: [11, 5, 3, 3, 3], conv1: { stride: 4, pad: 2 }, fc: 2048, onesBiases: true }, 1000),
};

/**
 * CIFAR-10 at 32x32 with the same topology (../shared/design/alexnet.md).
 * Not the paper's initialisation: on this narrower net N(0, 0.01^2) weights
 * make the gradients vanish below fc6 (measured: conv1's gradient 1/800 of
 * fc8's; a fixed batch of 32 is not fitted in 25 steps at lr 0.01), so the
 * weights are He-initialised (sqrt(2 / fan_in); fc8 0.01), the biases 0 and
 * the input (pixel - mean) / 64, about unit size (README, "The model").
 */
export const cifar: ModelSpec = {
  name: 'cifar',
  inputSize: 32,
  inputChannels: 3,
  classes: 10,
  towers: 2,
  initStd: 'he',
  inputScale: 64,
  layers: alexnetLayers({ conv: [32, 64, 96, 96, 64], sizes: [5, 5, 3, 3, 3], conv1: { stride: 1, pad: 2 }, fc: 512, onesBiases: false }, 10),
};

/**
 * For tests: the same graph at 16x16 with a few channels per tower. Its input
 * is scaled to about unit size and its init std is larger than the paper's, so
 * that a few hundred steps learn something at this width.
 */
export const tiny: ModelSpec = {
  name: 'tiny',
  inputSize: 16,
  inputChannels: 3,
  classes: 4,
  towers: 2,
  initStd: 'he',
  inputScale: 64,
  layers: alexnetLayers({ conv: [4, 8, 8, 8, 4], sizes: [3, 3, 3, 3, 3], conv1: { stride: 1, pad: 1 }, fc: 16, onesBiases: true }, 4),
};

export const presets = { paper, cifar, tiny } as const;
export type PresetName = keyof typeof presets;
export const presetNames = Object.keys(presets) as PresetName[];

export function getPreset(name: string): ModelSpec {
  if (!(name in presets)) {
    throw new Error(`unknown preset "${name}": choose one of ${presetNames.join(', ')}`);
  }
  return presets[name as PresetName];
}
