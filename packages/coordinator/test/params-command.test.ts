/** `alexnet params`: the count per layer adds up, and the hash is the one checkpoints and handshakes carry. */
import test from 'ava';
import { countParameters, getPreset, modelHash } from '@alexnet-mp/core';
import { paramsReport } from '../src/cli/params-command.js';

test('params prints the total, every layer and the model hash; --json says the same', (t) => {
  const spec = getPreset('cifar');
  const json = JSON.parse(paramsReport('cifar', true)) as { preset: string; modelHash: string; total: number; perLayer: { layer: string; weights: number; biases: number }[] };
  t.is(json.modelHash, modelHash(spec));
  t.regex(json.modelHash, /^[0-9a-f]{64}$/);
  t.is(json.total, countParameters(spec).total);
  t.is(json.perLayer.reduce((s, l) => s + l.weights + l.biases, 0), json.total);
  const text = paramsReport('cifar', false).trimEnd().split('\n');
  t.true(text[0]!.startsWith(`preset cifar: ${json.total.toLocaleString('en-US')} parameters`));
  t.true(text[0]!.endsWith(`model hash ${json.modelHash}`));
  t.is(text.length, 1 + json.perLayer.length);
  t.not(modelHash(getPreset('paper')), json.modelHash, 'presets hash apart');
});
