import test from 'ava';
import { planFusion } from '../src/tower/fusion.js';
import { paper } from '../src/model/presets.js';
import { segmentModel } from '../src/model/segments.js';

test("AlexNet's fusions: relu in every GEMM before it, dropout in fc6's and fc7's, relu's backward folded into lrn, pool5 and dropout", (t) => {
  const fused: string[] = [];
  for (const seg of segmentModel(paper)) {
    const layers = seg.plans.map((p) => p.layer);
    planFusion(layers).forEach((f, i) => {
      const name = layers[i]!.name;
      if (f.reluOut) fused.push(`${name}+relu`);
      if (f.dropoutOut) fused.push(`${name}+dropout`);
      if (f.reluForwardFused && f.reluBackwardFolded) fused.push(`${name}:none`);
      else if (f.reluForwardFused) fused.push(`${name}:backward`);
      if (f.reluBefore) fused.push(`${name}<relu`);
      if (f.dropoutForwardFused) fused.push(`${name}:backward`);
    });
  }
  t.deepEqual(fused, [
    'conv1+relu', 'relu1:none', 'lrn1<relu', 'conv2+relu', 'relu2:none', 'lrn2<relu',
    'conv3+relu', 'relu3:backward', 'conv4+relu', 'relu4:backward', 'conv5+relu', 'relu5:none', 'pool5<relu',
    'fc6+relu', 'fc6+dropout', 'relu6:none', 'drop6<relu', 'drop6:backward',
    'fc7+relu', 'fc7+dropout', 'relu7:none', 'drop7<relu', 'drop7:backward',
  ]);
});

test('a relu not after a GEMM runs its own forward; one before a layer that cannot fold it runs its own backward', (t) => {
  const f = planFusion([
    { type: 'maxpool', name: 'p', size: 3, stride: 2 },
    { type: 'relu', name: 'r' },
    { type: 'fc', name: 'f', unitsPerTower: 4, input: 'own', biasInit: 0 },
    { type: 'dropout', name: 'd', rate: 0.5 },
  ]);
  t.false(f[1]!.reluForwardFused);
  t.false(f[1]!.reluBackwardFolded);
  t.false(f[2]!.reluOut);
  t.false(f[2]!.dropoutOut);
  t.false(f[3]!.reluBefore);
  t.false(f[3]!.dropoutForwardFused);
});
