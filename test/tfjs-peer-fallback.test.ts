/**
 * The benchmark peer's own Conv2DBackpropFilter (bench/peer/tfjs-alexnet.ts: tfjs-backend-wasm 4.22 has
 * none) against TensorFlow.js's cpu backend: the filter gradient of a conv2d, for the strides and
 * paddings the presets use. The benchmark's peer numbers stand on this kernel.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { conv2dBackpropFilterNHWC } from '../bench/peer/tfjs-alexnet.js';
import { maxRelError } from './helpers.js';

const cases = [
  { name: 'conv1-like: 5x5 stride 2, same', x: [2, 13, 13, 3], f: [5, 5, 3, 8], stride: 2, pad: 'same' as const },
  { name: '11x11 stride 4, valid (the paper\'s conv1)', x: [1, 27, 27, 3], f: [11, 11, 3, 6], stride: 4, pad: 'valid' as const },
  { name: '3x3 stride 1, same, more channels than a tile', x: [3, 7, 7, 19], f: [3, 3, 19, 13], stride: 1, pad: 'same' as const },
];

for (const c of cases) {
  test(`the peer's Conv2DBackpropFilter equals tfjs cpu's filter gradient: ${c.name}`, async (t) => {
    await tf.setBackend('cpu');
    const x = tf.randomNormal(c.x as [number, number, number, number], 0, 1, 'float32', 1);
    const w = tf.randomNormal(c.f as [number, number, number, number], 0, 1, 'float32', 2);
    const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad);
    const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 3);
    // the cpu backend's own kernel, the one tfjs's conv2d gradient calls
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.f };
    const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    const want = await dw.data();
    const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], c.f as [number, number, number, number], c.stride, 1, c.pad, undefined, false, 'channelsLast');
    const got = new Float32Array(want.length);
    conv2dBackpropFilterNHWC(await x.data() as Float32Array, await dy.data() as Float32Array, got, {
      batch: info.batchSize, inH: info.inHeight, inW: info.inWidth, inC: info.inChannels,
      outH: info.outHeight, outW: info.outWidth, outC: info.outChannels,
      fh: info.filterHeight, fw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth,
      padTop: info.padInfo.top, padLeft: info.padInfo.left,
    });
    const e = maxRelError(got, want as Float32Array, 1e-4);
    t.true(e < 1e-4, `relative error ${e.toExponential(2)}`);
    t.true(got.some((v) => v !== 0));
    tf.dispose([x, w, y, dy, dw]);
  });
}
