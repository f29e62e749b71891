import test from 'ava';
import { cifar, paper, tiny } from '@alexnet-mp/core';
import { DEFAULT_INPUT_MEAN, inputMeanFrom, inputNormalisation, normaliseImages } from '../src/images.js';

test('images become (u8 - mean_c) / inputScale, channel by channel (CNHW)', (t) => {
  // 3 channels x 2 pixels
  const u8 = Uint8Array.from([0, 255, 100, 120, 10, 20]);
  const x = normaliseImages(u8, { mean: [100, 110, 120], scale: 1 });
  t.deepEqual([...x], [-100, 155, -10, 10, -110, -100]);
  const half = normaliseImages(u8, { mean: [0, 0, 0], scale: 2 });
  t.deepEqual([...half], [0, 127.5, 50, 60, 5, 10]);
});

test('the paper preset only subtracts the mean, as the paper does; cifar and tiny scale by 64 (README, Init)', (t) => {
  t.is(inputNormalisation(paper).scale, 1);
  t.is(inputNormalisation(cifar).scale, 64);
  t.is(inputNormalisation(tiny).scale, 64);
  t.deepEqual(inputNormalisation(tiny).mean, DEFAULT_INPUT_MEAN);
});

test('the mean sent at Configure: empty means 128 each; a wrong count or a value outside 0..255 is a message', (t) => {
  t.deepEqual(inputMeanFrom([], 3), [128, 128, 128]);
  t.deepEqual(inputMeanFrom(undefined, 3), [128, 128, 128]);
  t.deepEqual(inputMeanFrom([125.3, 123, 114], 3), [125.3, 123, 114]);
  t.regex(inputMeanFrom([1, 2], 3) as string, /2 values, the model has 3 input channels/);
  t.regex(inputMeanFrom([1, 2, 300], 3) as string, /300 is outside 0\.\.255/);
  t.regex(inputMeanFrom([1, Number.NaN, 3], 3) as string, /outside/);
});
