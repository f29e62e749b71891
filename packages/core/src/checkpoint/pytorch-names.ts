/**
 * Checkpoint tensor names: those of a PyTorch AlexNet with groups = 2, so
 * that `model.load_state_dict(safetensors.torch.load_file(path), strict=False)`
 * loads the weights (momentum tensors carry a "momentum." prefix and are
 * ignored by such a load). The PyTorch model:
 *
 *   features = Sequential(
 *     Conv2d(3, 96, 11, stride=4, padding=2), ReLU(), LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2), MaxPool2d(3, 2),
 *     Conv2d(96, 256, 5, padding=2, groups=2), ReLU(), LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2), MaxPool2d(3, 2),
 *     Conv2d(256, 384, 3, padding=1), ReLU(),
 *     Conv2d(384, 384, 3, padding=1, groups=2), ReLU(),
 *     Conv2d(384, 256, 3, padding=1, groups=2), ReLU(), MaxPool2d(3, 2))
 *   classifier = Sequential(
 *     Dropout(), Linear(256 * 6 * 6, 4096), ReLU(), Dropout(), Linear(4096, 4096), ReLU(), Linear(4096, 1000))
 *
 * (PyTorch divides LRN's alpha by n: 5e-4 there is the paper's 1e-4.) Every
 * PyTorch tensor is tower 0's part followed by tower 1's along dimension 0:
 * for a grouped conv that is group 0 then group 1; for conv3, fc6 and fc7 the
 * output units of tower 0 then tower 1; fc8 is tower 0's alone.
 */
import type { ModelSpec } from '../model/spec.js';
import { towerParamLayers } from '../model/params.js';

const torchName: Record<string, string> = {
  conv1: 'features.0',
  conv2: 'features.4',
  conv3: 'features.8',
  conv4: 'features.10',
  conv5: 'features.12',
  fc6: 'classifier.1',
  fc7: 'classifier.4',
  fc8: 'classifier.6',
};

export interface TorchTensorPlan {
  /** Our layer name and PyTorch's module path. */
  readonly layer: string;
  readonly module: string;
  /** PyTorch weight shape: [out, in/groups, kh, kw] for convs, [out, in] for linear layers. */
  readonly weightShape: number[];
  readonly biasShape: number[];
  /** Which towers hold a part (tower 0 first). */
  readonly towers: (0 | 1)[];
}

export function torchPlan(spec: ModelSpec): TorchTensorPlan[] {
  const t1 = new Set(towerParamLayers(spec, 1).map((l) => l.name));
  return towerParamLayers(spec, 0).map((l) => {
    const module = torchName[l.name];
    if (!module) throw new Error(`no PyTorch name for layer ${l.name}`);
    const towers: (0 | 1)[] = t1.has(l.name) ? [0, 1] : [0];
    const [o, i, kh, kw] = l.shape;
    const out = o * towers.length;
    const isConv = spec.layers.find((x) => x.name === l.name)!.type === 'conv';
    return {
      layer: l.name,
      module,
      weightShape: isConv ? [out, i, kh, kw] : [out, i * kh * kw],
      biasShape: [out],
      towers,
    };
  });
}
