/**
 * The whole two-tower model in plain float64, built from the reference layers:
 * the oracle that the gpu.js tower runtime (and through it the one-process and
 * the two-worker trainers) is checked against. Same segments, same crossing
 * arithmetic, same dropout masks.
 */
import type { ModelSpec, TowerIndex } from '../model/spec.js';
import { segmentModel } from '../model/segments.js';
import type { TowerParams } from '../model/params.js';
import { dropoutMask } from '../kernels/dropout.js';
import { deriveSeed } from '../random.js';
import { conv2dBackward, conv2dForward } from './conv2d.js';
import * as L from './layers.js';

type F64 = Float64Array;

interface Step {
  forward(x: F64): F64;
  backward(dy: F64): F64;
}

export interface ReferenceResult {
  loss: number;
  logits: F64;
  /** Per tower, per layer: dL/dw and dL/db. */
  grads: [Map<string, { dw: F64; db: F64 }>, Map<string, { dw: F64; db: F64 }>];
}

function flattenFwd(x: F64, C: number, N: number, HW: number): F64 {
  const out = new Float64Array(x.length);
  for (let c = 0; c < C; c++) for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) out[(c * HW + i) * N + n] = x[(c * N + n) * HW + i]!;
  return out;
}

function flattenBwd(g: F64, C: number, N: number, HW: number): F64 {
  const out = new Float64Array(g.length);
  for (let c = 0; c < C; c++) for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) out[(c * N + n) * HW + i] = g[(c * HW + i) * N + n]!;
  return out;
}

export function referenceStep(spec: ModelSpec, params: [TowerParams, TowerParams], images: ArrayLike<number>, labels: ArrayLike<number>, N: number, ctx: { seed: number; step: number; train: boolean }): ReferenceResult {
  const segments = segmentModel(spec);
  const grads: ReferenceResult['grads'] = [new Map(), new Map()];
  const steps: Step[][][] = [[], []];
  let layerIndex = 0;
  for (const seg of segments) {
    const per: Step[][] = [[], []];
    for (const plan of seg.plans) {
      const idx = layerIndex++;
      for (const t of [0, 1] as TowerIndex[]) {
        if (seg.tower0Only && t === 1) continue;
        const l = plan.layer;
        const inS = plan.inShape;
        const p = params[t].get(l.name);
        let saved: F64 = new Float64Array(0);
        let step: Step;
        switch (l.type) {
          case 'conv': {
            const cp = { C: inS.c, N, H: inS.h, W: inS.w, O: l.filtersPerTower, R: l.size, stride: l.stride, pad: l.pad, groups: 1 };
            step = {
              forward: (x) => ((saved = x), conv2dForward(cp, x, p!.w, p!.b)),
              backward: (dy) => {
                const g = conv2dBackward(cp, saved, p!.w, dy);
                grads[t].set(l.name, { dw: g.dw, db: g.db });
                return g.dx;
              },
            };
            break;
          }
          case 'fc': {
            const HW = inS.h * inS.w;
            const K = inS.c * HW;
            step = {
              forward: (x) => {
                saved = flattenFwd(x, inS.c, N, HW);
                return L.fcForward(l.unitsPerTower, K, N, saved, p!.w, p!.b);
              },
              backward: (dy) => {
                const g = L.fcBackward(l.unitsPerTower, K, N, saved, p!.w, dy);
                grads[t].set(l.name, { dw: g.dw, db: g.db });
                return flattenBwd(g.dx, inS.c, N, HW);
              },
            };
            break;
          }
          case 'relu':
            step = { forward: (x) => (saved = L.reluForward(x)), backward: (dy) => L.reluBackward(saved, dy) };
            break;
          case 'lrn': {
            const lp = { C: inS.c, plane: N * inS.h * inS.w, size: l.size, alpha: l.alpha, beta: l.beta, k: l.k };
            step = { forward: (x) => L.lrnForward(lp, (saved = x)), backward: (dy) => L.lrnBackward(lp, saved, dy) };
            break;
          }
          case 'maxpool': {
            const pp = { CN: inS.c * N, H: inS.h, W: inS.w, K: l.size, S: l.stride };
            step = { forward: (x) => L.maxPoolForward(pp, (saved = x)).y, backward: (dy) => L.maxPoolBackward(pp, saved, dy) };
            break;
          }
          case 'dropout': {
            const size = inS.c * inS.h * inS.w * N;
            const mask = ctx.train ? dropoutMask(size, l.rate, deriveSeed(ctx.seed, ctx.step, idx, t)) : null;
            step = { forward: (x) => (mask ? L.dropoutForward(x, mask) : x), backward: (dy) => (mask ? L.dropoutForward(dy, mask) : dy) };
            break;
          }
        }
        per[t]!.push(step);
      }
    }
    steps[0].push(per[0]!);
    steps[1].push(per[1]!);
  }
  // forward, concatenating at every crossing
  let outs: F64[] = [Float64Array.from(images), Float64Array.from(images)];
  for (let i = 0; i < segments.length; i++) {
    const x = i === 0 ? outs[0]! : Float64Array.from([...outs[0]!, ...outs[1]!]);
    outs = [0, 1].map((t) => steps[t]![i]!.reduce((cur, s) => s.forward(cur), x));
  }
  const logits = outs[0]!;
  const { loss, dz } = L.softmaxCrossEntropy(spec.classes, N, logits, labels);
  // backward, summing both towers' slices at every crossing
  const runBack = (t: number, i: number, dy: F64): F64 => steps[t]![i]!.reduceRight((cur, s) => s.backward(cur), dy);
  const last = segments.length - 1;
  let dIn = runBack(0, last, dz);
  let d = [dIn.subarray(0, dIn.length / 2), dIn.subarray(dIn.length / 2)];
  for (let i = last - 1; i >= 0; i--) {
    const g = [runBack(0, i, d[0]!), runBack(1, i, d[1]!)];
    if (i > 0) {
      const h = g[0]!.length / 2;
      d = [0, 1].map((t) => Float64Array.from({ length: h }, (_, j) => g[0]![t * h + j]! + g[1]![t * h + j]!));
    }
  }
  dIn = new Float64Array(0);
  return { loss, logits, grads };
}

/** The mean loss alone, for finite differences. */
export function referenceLoss(spec: ModelSpec, params: [TowerParams, TowerParams], images: ArrayLike<number>, labels: ArrayLike<number>, N: number, ctx: { seed: number; step: number; train: boolean }): number {
  return referenceStep(spec, params, images, labels, N, ctx).loss;
}
