/** `alexnet params`: the table of a preset adds up, its shapes are the paper's, and the hash is the one checkpoints and handshakes carry. */
import test from 'ava';
import { countParameters, forwardMacs, getPreset, layerTable, modelHash, planModel } from '@alexnet-mp/core';
import { paramsReport } from '../src/cli/params-command.js';

test('params prints the total and the model hash; a row per layer whose parameters and multiply-adds add up to them; --json says the same', (t) => {
  const spec = getPreset('cifar');
  const json = JSON.parse(paramsReport('cifar', true)) as { preset: string; model_hash: string; total: number; forward_macs_per_image: number; per_layer: { layer: string; weights: number; biases: number }[]; layers: { layer: string; weights: number; biases: number; macs: number }[] };
  t.is(json.model_hash, modelHash(spec));
  // snake case, as the program's other JSON
  t.deepEqual(Object.keys(json), ['preset', 'model_hash', 'total', 'per_layer', 'forward_macs_per_image', 'layers']);
  t.deepEqual(Object.keys(json.layers[0]!), ['layer', 'type', 'op', 'input', 'in_shape', 'out_shape', 'towers', 'weights', 'biases', 'macs']);
  t.regex(json.model_hash, /^[0-9a-f]{64}$/);
  t.is(json.total, countParameters(spec).total);
  t.is(json.per_layer.reduce((s, l) => s + l.weights + l.biases, 0), json.total);
  t.is(json.layers.reduce((s, l) => s + l.weights + l.biases, 0), json.total);
  t.is(json.layers.reduce((s, l) => s + l.macs, 0), forwardMacs(spec));
  t.deepEqual(json.layers.map((l) => l.layer), spec.layers.map((l) => l.name));
  const text = paramsReport('cifar', false).trimEnd().split('\n');
  t.true(text[0]!.startsWith(`preset cifar: ${json.total.toLocaleString('en-US')} parameters`));
  t.true(text[0]!.endsWith(`model hash ${json.model_hash}`));
  // the headline, a blank line, the column names, a row a layer, the totals, a blank line, the note
  t.is(text.length, 3 + spec.layers.length + 3);
  t.regex(text[3 + spec.layers.length]!, new RegExp(`^total\\s+${json.per_layer.reduce((s, l) => s + l.weights, 0).toLocaleString('en-US')}\\s+[\\d,]+\\s+${forwardMacs(spec).toLocaleString('en-US')}$`));
  t.not(modelHash(getPreset('paper')), json.model_hash, 'presets hash apart');
});

test("the paper preset's table is the paper's Figure 2: 48 kernels of 11x11 stride 4 on each tower to 55x55, conv3 and the fc layers reading both towers, fc8 on one", (t) => {
  const rows = new Map(layerTable(getPreset('paper')).map((r) => [r.layer, r]));
  t.like(rows.get('conv1'), { op: '11x11 /4 pad 2', input: 'own', inShape: [3, 224, 224], outShape: [48, 55, 55], towers: 2, weights: 2 * 48 * 3 * 11 * 11, biases: 96 });
  t.like(rows.get('pool1'), { op: '3x3 /2', outShape: [48, 27, 27], weights: 0, macs: 0 });
  t.like(rows.get('lrn1'), { op: 'n 5, alpha 0.0001, beta 0.75, k 2' });
  t.like(rows.get('conv3'), { input: 'both', inShape: [256, 13, 13], outShape: [192, 13, 13] });
  t.like(rows.get('conv4'), { input: 'own', inShape: [192, 13, 13] });
  t.like(rows.get('pool5'), { outShape: [128, 6, 6] });
  t.like(rows.get('fc6'), { input: 'both', inShape: [256, 6, 6], outShape: [2048, 1, 1], weights: 2 * 2048 * 256 * 36 });
  t.like(rows.get('drop6'), { op: 'rate 0.5' });
  t.like(rows.get('fc8'), { input: 'both', towers: 1, outShape: [1000, 1, 1], weights: 4096 * 1000, biases: 1000 });
  // every row's shapes are the plan's the towers compute with
  for (const p of planModel(getPreset('paper'))) t.deepEqual(rows.get(p.layer.name)!.outShape, [p.outShape.c, p.outShape.h, p.outShape.w]);
});
