/** divergence.ts: a non-finite loss or parameter stops the run naming the step (and the tower and layer). */
import test from 'ava';
import { getPreset, initTowerParams } from '@alexnet-mp/core';
import { DivergedError, checkLoss, checkParams, firstNonFinite } from '../src/divergence.js';

const spec = getPreset('tiny');

test('a finite loss passes; NaN and Infinity stop the run naming the step and the learning rate', (t) => {
  t.notThrows(() => checkLoss(3, 1.25, 0.01));
  for (const [loss, word] of [
    [NaN, 'NaN'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
  ] as const) {
    const e = t.throws(() => checkLoss(7, loss, 1000), { instanceOf: DivergedError });
    t.is(e.step, 7);
    t.regex(e.message, new RegExp(`^the loss is ${word} at step 7 \\(learning rate 1000\\): training diverged`));
  }
});

test('parameters with an infinite weight or a NaN momentum are refused, naming the tower, layer and index', (t) => {
  const towers = [initTowerParams(spec, 0, 1), initTowerParams(spec, 1, 1)];
  t.notThrows(() => checkParams(towers, 5));
  t.is(firstNonFinite(towers[0]!), null);
  const conv3 = towers[1]!.get('conv3')!;
  conv3.w[4] = Infinity;
  const e = t.throws(() => checkParams(towers, 5), { instanceOf: DivergedError });
  t.is(e.step, 4);
  t.regex(e.message, /^tower 1's parameters are not finite after step 4 \(conv3\.w\[4\] = Infinity\): training diverged; no checkpoint written/);
  conv3.w[4] = 0;
  const fc6 = towers[0]!.get('fc6')!;
  fc6.vb = new Float32Array(fc6.b.length);
  fc6.vb[0] = NaN;
  t.is(firstNonFinite(towers[0]!), 'fc6.vb[0] = NaN');
});

test('weights beyond ±1.84e19 (their square overflows float32) have run away: no checkpoint of them, as a reader would call them damage', (t) => {
  const towers = [initTowerParams(spec, 0, 1), initTowerParams(spec, 1, 1)];
  towers[0]!.get('fc6')!.w[3] = 2.42e19;
  t.is(firstNonFinite(towers[0]!), 'fc6.w[3] = 2.42e+19, beyond ±1.84e+19');
  const e = t.throws(() => checkParams(towers, 2), { instanceOf: DivergedError })!;
  t.is(e.message, "tower 0's parameters have run away after step 1 (fc6.w[3] = 2.42e+19, beyond ±1.84e+19): training diverged; no checkpoint written, the previous one is kept");
  towers[0]!.get('fc6')!.w[3] = 1.8e19;
  t.notThrows(() => checkParams(towers, 2), 'just below the bound');
});
