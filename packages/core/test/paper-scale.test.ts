/**
 * The paper preset at full size, which the other kernel tests (small shapes) reach only by parts:
 * 224x224 inputs, stride-4 conv1, conv im2col buffers cut into chunks, fc6's 9216x2048 weights per
 * tower (18.9 M floats, past 2^24) multiplied and updated in blocks. One image through both gpu.js
 * towers against the float64 reference model: the loss and every layer's gradients.
 */
import test from 'ava';
import { paper } from '../src/model/presets.js';
import { initTowerParams } from '../src/model/params.js';
import { referenceStep } from '../src/reference/grouped-model.js';
import { Rng } from '../src/random.js';
import { scaledError, testDevice } from './helpers.js';
import { towersPass } from './two-towers.js';

test('the paper preset at 224x224: the gpu.js towers give the float64 reference model\'s loss and every gradient, fc6 included', async (t) => {
  const dev = await testDevice();
  const params = [initTowerParams(paper, 0, 5), initTowerParams(paper, 1, 5)] as [ReturnType<typeof initTowerParams>, ReturnType<typeof initTowerParams>];
  t.true(params[0].get('fc6')!.w.length > 1 << 24, "fc6's weights per tower pass 2^24 floats");
  // one image, pixels minus the mean at the paper's scale (input / 1)
  const r = new Rng(9);
  const images = Float32Array.from({ length: 3 * paper.inputSize * paper.inputSize }, () => (r.next() * 2 - 1) * 100);
  const labels = Float32Array.of(417);
  const ctx = { seed: 3, step: 0, train: true };
  const ref = referenceStep(paper, params, images, labels, 1, ctx);
  const pass = await towersPass(dev, paper, params, images, labels, ctx);
  t.true(Math.abs(pass.loss - ref.loss) / ref.loss < 1e-5, `loss ${pass.loss} vs ${ref.loss}`);
  let layers = 0;
  let worst = 0;
  for (const tw of [0, 1] as const) {
    for (const [name, want] of ref.grads[tw]) {
      const got = pass.grads[tw].get(name)!;
      for (const [k, g, w] of [['dw', got.dw, want.dw], ['db', got.db, want.db]] as const) {
        const e = scaledError(await dev.toHost(g, w.length), w);
        worst = Math.max(worst, e);
        t.true(e < 1e-3, `tower ${tw} ${name} ${k}: error ${e.toExponential(2)} of its largest value`);
      }
      layers++;
    }
  }
  t.is(layers, 15, 'conv1-conv5 and fc6-fc7 on both towers, fc8 on tower 0');
  t.log(`loss ${pass.loss.toFixed(5)} (float64 ${ref.loss.toFixed(5)}); worst gradient error ${worst.toExponential(2)} of its tensor's largest value`);
});
