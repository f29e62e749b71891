/** divergence.ts: a non-finite loss or parameter stops the run naming the step (and the tower and layer). */
import test from 'ava';
import { getPreset, initTowerParams } from '@alexnet-mp/core';
import { DivergedError, LossWatch, checkLoss, checkParams, firstNonFinite } from '../src/divergence.js';

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

test('a loss that runs away while still finite: five steps in a row above 10 x ln(classes) stop the run; spikes do not', (t) => {
  const w = new LossWatch(4); // 10 ln 4 = 13.86
  // learning: calm losses, spikes above the limit, four in a row at most, then calm again
  const calm = [1.6, 1.2, 0.4, 30, 0.3, 20, 25, 0.2, 14, 15, 16, 17, 0.5, 0.1, 0.2, 0.1, 0.1, 0.2, 0.1, 0.1, 0.2];
  for (const [s, loss] of calm.entries()) t.notThrows(() => w.observe(s, loss, 0.01), `step ${s}`);
  t.false(w.runningAway);
  w.noteCheckpoint(21); // calm: the median of the last 10 losses is far below 2 ln 4
  // the loss rises (a checkpoint then is not calm), then runs away: the fifth step above the limit in a row stops it
  for (const [i, loss] of [3.6, 4.8, 3.1, 1.7, 2.4, 14.5, 4.4, 2.3, 1.2, 18.4, 2.0].entries()) w.observe(21 + i, loss, 0.01);
  w.noteCheckpoint(32);
  for (const [i, loss] of [165.6, 1015.8, 31.8].entries()) w.observe(32 + i, loss, 0.01);
  t.true(w.runningAway, 'three steps above the limit: no checkpoint of these weights');
  w.observe(35, 28.6, 0.01);
  const e = t.throws(() => w.observe(36, 29.4, 0.01), { instanceOf: DivergedError });
  t.is(e.step, 36);
  t.is(e.message, 'the loss has run away: above 13.9 (10 times ln 4, the loss of guessing) for 5 steps, 165.6, 1015.8, 31.8, 28.6, 29.4 at steps 32-36 (learning rate 0.01): training diverged; lower --lr and resume from a checkpoint written before it');
  // the checkpoint to resume from: the last written in calm training (step 21), not the one after the loss rose
  t.is(w.lastCalm([10, 21, 32]), 21);
  t.is(w.lastCalm([10]), 10, "one this coordinator did not write (an earlier session's) counts as calm");
  t.is(w.lastCalm([32]), null);
  // 1000 classes: the limit is 69, above any loss of a run that learns or starts (ln 1000 = 6.9)
  const paper = new LossWatch(1000);
  for (let s = 0; s < 10; s++) t.notThrows(() => paper.observe(s, 60, 0.01));
});
