import test from 'ava';
import { cifar, paper, tiny, getPreset } from '../src/model/presets.js';
import { countParameters, forwardMacs, planModel } from '../src/model/shapes.js';
import { crossingSizes, segmentModel } from '../src/model/segments.js';
import { initStdOf, initTowerParams, towerParamLayers } from '../src/model/params.js';

test("the paper preset has the paper's shape at every layer, per tower", (t) => {
  const shapes = Object.fromEntries(planModel(paper).map((p) => [p.layer.name, [p.outShape.h, p.outShape.w, p.outShape.c]]));
  t.deepEqual(shapes.conv1, [55, 55, 48]);
  t.deepEqual(shapes.pool1, [27, 27, 48]);
  t.deepEqual(shapes.conv2, [27, 27, 128]);
  t.deepEqual(shapes.pool2, [13, 13, 128]);
  t.deepEqual(shapes.conv3, [13, 13, 192]);
  t.deepEqual(shapes.conv4, [13, 13, 192]);
  t.deepEqual(shapes.conv5, [13, 13, 128]);
  t.deepEqual(shapes.pool5, [6, 6, 128]);
  t.deepEqual(shapes.fc6, [1, 1, 2048]);
  t.deepEqual(shapes.fc7, [1, 1, 2048]);
  t.deepEqual(shapes.fc8, [1, 1, 1000]);
  const conv3 = planModel(paper).find((p) => p.layer.name === 'conv3')!;
  t.is(conv3.inShape.c, 256, 'conv3 reads both towers (2 x 128 channels)');
  const fc6 = planModel(paper).find((p) => p.layer.name === 'fc6')!;
  t.is(fc6.inShape.c * fc6.inShape.h * fc6.inShape.w, 2 * 4608, 'fc6 reads both towers (2 x 4608)');
});

test('the paper preset has exactly 60,965,224 parameters', (t) => {
  const { total, perLayer } = countParameters(paper);
  t.is(total, 60_965_224);
  const conv1 = perLayer.find((l) => l.layer === 'conv1')!;
  t.is(conv1.weights, 96 * 11 * 11 * 3);
  const fc8 = perLayer.find((l) => l.layer === 'fc8')!;
  t.is(fc8.weights, 1000 * 4096);
});

test('the towers cross exactly at pool2, pool5, fc6 and fc7', (t) => {
  for (const spec of [paper, cifar, tiny]) {
    const segs = segmentModel(spec);
    t.deepEqual(segs.map((s) => s.crossing), [null, 'pool2', 'pool5', 'fc6', 'fc7'], spec.name);
    t.deepEqual(segs.map((s) => s.tower0Only), [false, false, false, false, true]);
  }
  t.deepEqual(crossingSizes(paper, 1), [
    { name: 'pool2', floats: 13 * 13 * 128 },
    { name: 'pool5', floats: 6 * 6 * 128 },
    { name: 'fc6', floats: 2048 },
    { name: 'fc7', floats: 2048 },
  ]);
});

test('the cifar preset does about 54 M multiply-adds per image forward', (t) => {
  const macs = forwardMacs(cifar);
  t.true(macs > 53e6 && macs < 56e6, `${macs}`);
});

test('an unknown preset is a clear error', (t) => {
  t.throws(() => getPreset('vgg'), { message: /unknown preset "vgg": choose one of paper, cifar, tiny/ });
});

test("initialisation: the paper's N(0, 0.01^2) and biases of 1 in conv2, conv4, conv5, fc6, fc7; cifar's He init and zero biases; tiny's He init and the paper's biases", (t) => {
  const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  const p = initTowerParams(tiny, 1, 3);
  for (const l of towerParamLayers(tiny, 1)) {
    const want = initStdOf(tiny, l.shape, l.classifier);
    t.is(want, l.classifier ? 0.01 : Math.sqrt(2 / (l.shape[1] * l.shape[2] * l.shape[3])));
    t.true(Math.abs(rms(p.get(l.name)!.w) / want - 1) < 0.25, `tiny ${l.name}: ${rms(p.get(l.name)!.w)}, want ${want}`);
    t.true(p.get(l.name)!.b.every((b) => b === (['conv2', 'conv4', 'conv5', 'fc6', 'fc7'].includes(l.name) ? 1 : 0)), l.name);
  }
  t.is(initStdOf(paper, [48, 3, 11, 11]), 0.01);
  const c = initTowerParams(cifar, 0, 3);
  for (const l of towerParamLayers(cifar, 0)) {
    const fanIn = l.shape[1] * l.shape[2] * l.shape[3];
    const want = l.classifier ? 0.01 : Math.sqrt(2 / fanIn);
    t.is(initStdOf(cifar, l.shape, l.classifier), want);
    t.true(Math.abs(rms(c.get(l.name)!.w) / want - 1) < 0.05, `cifar ${l.name}: rms ${rms(c.get(l.name)!.w)}, want ${want}`);
    t.true(c.get(l.name)!.b.every((b) => b === 0), l.name);
  }
  t.is(cifar.inputScale, 64);
  t.is(paper.inputScale, 1);
});
