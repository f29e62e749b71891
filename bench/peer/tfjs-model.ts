/**
 * The TensorFlow.js model shared by the benchmark's TensorFlow.js peers (the wasm peer in
 * tfjs-alexnet.ts, the WebGPU peer in tfjs-webgpu.ts): the same two-tower AlexNet as
 * packages/core (built from the same ModelSpec), one full training step (forward, backward,
 * SGD-with-momentum update) per call, the gradients tfjs-core's Node bundle lacks, and the
 * timing loop. It imports tfjs-core only: each peer sets up its own backend before using it.
 *
 * Layout: NHWC (tfjs's native format); conv filters [kh, kw, in, out]; fc weights [in, out]
 * on the NHWC-flattened input. Same parameter counts and multiply-adds as the NCHW model in
 * packages/core; the flatten order differs, which does not matter for a throughput peer with
 * random weights. Conv and fc layers are tf.fused.conv2d / tf.fused.matMul with a bias and no
 * fused activation: with one, tfjs unfuses them when recording gradients, into ops whose
 * gradients its Node bundle does not register.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import type { ModelSpec } from '../../packages/core/src/model/spec.js';
import { planModel, weightShape, type LayerPlan } from '../../packages/core/src/model/shapes.js';
import { initStdOf } from '../../packages/core/src/model/params.js';
import { median } from '../../packages/core/src/median.js';

export interface PeerResult {
  imagesPerSec: number;
  stepMs: number[];
  medianStepMs: number;
  description: string;
  fallbacks: string[];
  threads: number;
  /** The loss of the first and of the last step (before their updates). */
  firstLoss: number;
  lastLoss: number;
}

/** The paper's hyper-parameters. */
export const LR = 0.01;
export const MOMENTUM = 0.9;
export const WEIGHT_DECAY = 0.0005;

const require = createRequire(import.meta.url);
export const TFJS_VERSION = (require('@tensorflow/tfjs-core/package.json') as { version: string }).version;

/** What every TensorFlow.js peer's description says about the model and the update. */
export const MODEL_DESCRIPTION =
  `NHWC, fused conv/matMul+bias, tf.variableGrads, SGD momentum ${MOMENTUM} weight decay ${WEIGHT_DECAY} (weights, not biases) lr ${LR}, one fixed random batch`;

// ---------------------------------------------------------------------------
// Gradients
// ---------------------------------------------------------------------------

/** Sums `res` over the axes broadcasting added to `shape` (as tfjs-core's binary-op gradients do). */
function unbroadcast(res: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, outShape);
  return axes.length > 0 ? tf.reshape(tf.sum(res, axes), shape) : res;
}

/**
 * The gradient definitions of the kernels on this graph's backward path, as
 * tfjs-core's src/gradients/*_grad.ts define them. tfjs-core's Node bundle
 * (the package's `main`) registers no gradients: the union package
 * @tensorflow/tfjs does, from tfjs-core's ESM dist, which Node cannot load
 * (extension-less imports). Registered only where none exists. Conv and fc
 * need none here: tf.fused.conv2d / tf.fused.matMul and the softmax
 * cross-entropy carry their own gradients (customGrad).
 */
const GRADIENTS: tf.GradConfig[] = [
  {
    kernelName: 'Relu', inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy as tf.Tensor, tf.cast(tf.step(x), 'float32')) }),
  },
  {
    kernelName: 'LRN', inputsToSave: ['x'], outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => {
      const { depthRadius, bias, alpha, beta } = attrs as unknown as tf.LRNAttrs;
      return { x: () => tf.engine().runKernel<tf.Tensor>('LRNGrad', { x, y, dy: dy as tf.Tensor }, { depthRadius, bias, alpha, beta }) };
    },
  },
  {
    kernelName: 'MaxPool', inputsToSave: ['x'], outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => {
      const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolAttrs;
      return {
        x: () => tf.engine().runKernel<tf.Tensor>('MaxPoolGrad', { dy: dy as tf.Tensor, input: x, output: y },
          { filterSize, strides, pad, dimRoundingMode } as unknown as tf.NamedAttrMap),
      };
    },
  },
  {
    kernelName: 'Concat', saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam((attrs as unknown as tf.ConcatAttrs).axis, saved[0].shape)[0];
      const parts = tf.split(dy as tf.Tensor, saved.map((t) => t.shape[axis]), axis);
      return Object.fromEntries(parts.map((t, i) => [String(i), () => t]));
    },
  },
  {
    kernelName: 'Reshape', inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.reshape(dy as tf.Tensor, x.shape) }),
  },
  {
    kernelName: 'Multiply', inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => {
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      return {
        a: () => unbroadcast(tf.mul(dy as tf.Tensor, tf.cast(b, 'float32')), a.shape, outShape),
        b: () => unbroadcast(tf.mul(dy as tf.Tensor, tf.cast(a, 'float32')), b.shape, outShape),
      };
    },
  },
  {
    kernelName: 'Mean', inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const axes = tf.util.parseAxisParam((attrs as unknown as tf.MeanAttrs).axis, x.shape);
      const expanded = x.shape.slice();
      let n = 1;
      for (const a of axes) { n *= x.shape[a]; expanded[a] = 1; }
      return { x: () => tf.div(tf.mul(tf.reshape(dy as tf.Tensor, expanded), tf.ones(x.shape, 'float32')), n) };
    },
  },
];

/** Registers the gradients above that tfjs-core has not registered; returns their kernel names (idempotent). */
export function registerGradients(): string[] {
  const registered: string[] = [];
  for (const g of GRADIENTS) {
    const existing = tf.getGradient(g.kernelName);
    if (existing === undefined) {
      tf.registerGradient(g);
      registered.push(g.kernelName);
    } else if (existing.gradFunc === g.gradFunc) {
      registered.push(g.kernelName);
    }
  }
  return registered;
}


// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

interface Param {
  name: string;
  w: tf.Variable;
  b: tf.Variable;
  vw: tf.Variable;
  vb: tf.Variable;
}

/** Per layer: one Param per tower, or a single one for the classifier. */
type Params = Map<string, Param[]>;

/** tfjs variable names are global: each model gets its own prefix. */
let modelCount = 0;

/** A variable holding `init()`'s values; the initial tensor itself is disposed (tidy keeps variables). */
function variable(init: () => tf.Tensor, trainable: boolean, name: string): tf.Variable {
  return tf.tidy(() => tf.variable(init(), trainable, name));
}

function createParams(spec: ModelSpec, plans: LayerPlan[], seed: number): Params {
  const params: Params = new Map();
  const prefix = `tfjs-peer${modelCount++}/`;
  let s = seed;
  for (const p of plans) {
    const l = p.layer;
    if (l.type !== 'conv' && l.type !== 'fc') continue;
    const [o, i, kh, kw] = weightShape(p);
    // NHWC conv filter [kh, kw, in, out]; fc weight [in*h*w, out].
    const shape = l.type === 'conv' ? [kh, kw, i, o] : [i * kh * kw, o];
    const towers = p.tower0Only ? 1 : spec.towers;
    const list: Param[] = [];
    for (let t = 0; t < towers; t++) {
      const name = `${prefix}${l.name}_t${t}`;
      list.push({
        name,
        w: variable(() => tf.randomNormal(shape, 0, initStdOf(spec, [o, i, kh, kw], l.type === 'fc' && l.classifier === true), 'float32', s++), true, `${name}_w`),
        b: variable(() => tf.fill([o], l.biasInit), true, `${name}_b`),
        vw: variable(() => tf.zeros(shape), false, `${name}_vw`),
        vb: variable(() => tf.zeros([o]), false, `${name}_vb`),
      });
    }
    params.set(l.name, list);
  }
  return params;
}

/** Both towers' outputs of the previous layer, concatenated on channels (NHWC axis 3, or axis 1 once flat). */
function concatTowers(ts: tf.Tensor[]): tf.Tensor {
  return tf.concat(ts, ts[0].rank - 1);
}

/**
 * Forward pass of both towers; returns the logits [batch, classes]. Dropout is on when `dropoutSeed`
 * is given: each mask is drawn from it, the layer and the tower, so a run is the same run every time.
 */
function forward(spec: ModelSpec, plans: LayerPlan[], params: Params, x: tf.Tensor4D, dropoutSeed?: number): tf.Tensor2D {
  let cur: tf.Tensor[] = [x, x];
  let masks = 0;
  for (const p of plans) {
    const l = p.layer;
    switch (l.type) {
      case 'conv': {
        const ps = params.get(l.name)!;
        const shared = l.input === 'both' ? concatTowers(cur) : null;
        const pad: [[number, number], [number, number], [number, number], [number, number]] =
          [[0, 0], [l.pad, l.pad], [l.pad, l.pad], [0, 0]];
        cur = ps.map((q, t) => tf.fused.conv2d({
          x: (shared ?? cur[t]) as tf.Tensor4D, filter: q.w as tf.Tensor4D, strides: l.stride, pad, bias: q.b,
        }));
        break;
      }
      case 'fc': {
        const ps = params.get(l.name)!;
        const flat = (t: tf.Tensor): tf.Tensor2D => (t.rank === 2 ? t as tf.Tensor2D : tf.reshape(t, [t.shape[0], -1]));
        const shared = l.input === 'both' ? flat(concatTowers(cur)) : null;
        cur = ps.map((q, t) => tf.fused.matMul({ a: shared ?? flat(cur[t]), b: q.w as tf.Tensor2D, bias: q.b }));
        break;
      }
      case 'relu':
        cur = cur.map((t) => tf.relu(t));
        break;
      case 'lrn':
        // tf's alpha is not divided by the window size: exactly the paper's convention.
        cur = cur.map((t) => tf.localResponseNormalization(t as tf.Tensor4D, (l.size - 1) / 2, l.k, l.alpha, l.beta));
        break;
      case 'maxpool':
        cur = cur.map((t) => tf.maxPool(t as tf.Tensor4D, l.size, l.stride, 'valid'));
        break;
      case 'dropout':
        if (dropoutSeed !== undefined) cur = cur.map((t) => tf.dropout(t, l.rate, undefined, dropoutSeed + masks++));
        break;
    }
  }
  if (cur.length !== 1) throw new Error(`${spec.name}: the last layer must be the classifier`);
  return cur[0] as tf.Tensor2D;
}

export interface TfjsModel {
  /** One training step on (x, labels); returns the loss before the update (a synchronous read: not on webgpu in Node). */
  step(x: tf.Tensor4D, labels: tf.Tensor1D): number;
  /** One training step on (x, labels); returns the loss before the update as a scalar tensor the caller disposes. */
  stepTensor(x: tf.Tensor4D, labels: tf.Tensor1D): tf.Scalar;
  /** The mean loss without dropout and without an update. */
  loss(x: tf.Tensor4D, labels: tf.Tensor1D): number;
  /** Logits [batch, classes]; dropout on when `training`. */
  logits(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
  /** Trainable weights and biases, both towers. */
  readonly trainable: tf.Variable[];
  dispose(): void;
}

export function buildTfjsModel(spec: ModelSpec, seed = 1): TfjsModel {
  const plans = planModel(spec);
  const params = createParams(spec, plans, seed);
  const all = [...params.values()].flat();
  const trainable = all.flatMap((q) => [q.w, q.b]);
  // each step's dropout masks from its own seeds: the model's seed, then the step's number
  let steps = 0;
  const stepSeed = () => seed * 1_000_003 + 1_000 * steps++;
  return {
    stepTensor(x, labels) {
      return tf.tidy(() => {
        const onehot = tf.oneHot(labels, spec.classes);
        const { value, grads } = tf.variableGrads(
          // Softmax cross-entropy, mean over the batch.
          () => tf.losses.softmaxCrossEntropy(
            onehot, forward(spec, plans, params, x, stepSeed()), undefined, 0, tf.Reduction.MEAN) as tf.Scalar,
          trainable,
        );
        // The paper's update: v <- 0.9 v - 0.0005 lr w - lr dL/dw ; w <- w + v; biases without the decay term, as ours.
        for (const q of all) {
          for (const [w, v, decays] of [[q.w, q.vw, true], [q.b, q.vb, false]] as const) {
            const momentum = tf.mul(v, MOMENTUM);
            const nv = tf.sub(decays ? tf.sub(momentum, tf.mul(w, WEIGHT_DECAY * LR)) : momentum, tf.mul(grads[w.name], LR));
            v.assign(nv);
            w.assign(tf.add(w, nv));
          }
        }
        return value;
      });
    },
    step(x, labels) {
      const loss = this.stepTensor(x, labels);
      const value = loss.dataSync()[0]!;
      loss.dispose();
      return value;
    },
    loss(x, labels) {
      const l = tf.tidy(() => tf.losses.softmaxCrossEntropy(
        tf.oneHot(labels, spec.classes), forward(spec, plans, params, x), undefined, 0, tf.Reduction.MEAN));
      const value = l.dataSync()[0];
      l.dispose();
      return value;
    },
    logits: (x, training) => forward(spec, plans, params, x, training ? stepSeed() : undefined),
    trainable,
    dispose() {
      for (const q of all) for (const v of [q.w, q.b, q.vw, q.vb]) v.dispose();
    },
  };
}

// ---------------------------------------------------------------------------
// Benchmark
// ---------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random batch: uint8 pixel values scaled to [-1, 1), and random labels. */
export function randomBatch(spec: ModelSpec, batch: number, seed: number): { x: tf.Tensor4D; labels: tf.Tensor1D } {
  const rand = mulberry32(seed);
  const n = batch * spec.inputSize * spec.inputSize * spec.inputChannels;
  const px = new Float32Array(n);
  for (let i = 0; i < n; i++) px[i] = (Math.floor(rand() * 256) - 128) / 128;
  const lab = new Int32Array(batch);
  for (let i = 0; i < batch; i++) lab[i] = Math.floor(rand() * spec.classes);
  return {
    x: tf.tensor4d(px, [batch, spec.inputSize, spec.inputSize, spec.inputChannels]),
    labels: tf.tensor1d(lab, 'int32'),
  };
}

/** Sets up the wasm backend (and fallbacks) for `threads`; returns what runs. */

/**
 * Times `warmup + iters` training steps of a model built for `spec` on the backend set up now,
 * reading the loss back after each step (the step has then finished). Throws on a non-finite
 * loss or on tensors that outlive a step.
 */
export async function timeTfjsSteps(opts: { spec: ModelSpec; batch: number; warmup: number; iters: number; seed?: number }): Promise<Pick<PeerResult, 'imagesPerSec' | 'stepMs' | 'medianStepMs' | 'firstLoss' | 'lastLoss'>> {
  const { spec, batch, warmup, iters } = opts;
  const seed = opts.seed ?? 1;
  if (iters < 1) throw new Error('iters must be at least 1');
  const model = buildTfjsModel(spec, seed);
  const { x, labels } = randomBatch(spec, batch, seed + 1000);
  const stepMs: number[] = [];
  const losses: number[] = [];
  let tensorsAfterFirst = -1;
  try {
    for (let i = 0; i < warmup + iters; i++) {
      const t0 = performance.now();
      const lossTensor = model.stepTensor(x, labels);
      const loss = (await lossTensor.data())[0]!; // read back: the step has finished
      const dt = performance.now() - t0;
      lossTensor.dispose();
      if (!Number.isFinite(loss)) throw new Error(`tfjs peer: loss is ${loss} at step ${i}`);
      losses.push(loss);
      const live = tf.memory().numTensors;
      if (i === 0) tensorsAfterFirst = live;
      else if (live !== tensorsAfterFirst) throw new Error(`tfjs peer leaks tensors: ${tensorsAfterFirst} -> ${live} at step ${i}`);
      if (i >= warmup) stepMs.push(dt);
    }
  } finally {
    model.dispose();
    x.dispose();
    labels.dispose();
  }
  const medianStepMs = median(stepMs);
  return { imagesPerSec: (batch * 1000) / medianStepMs, stepMs, medianStepMs, firstLoss: losses[0]!, lastLoss: losses[losses.length - 1]! };
}
