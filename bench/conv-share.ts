/**
 * The convolutions alone, against the machine's measured WebAssembly SIMD ceiling: every conv
 * layer of one tower (im2col, the GEMMs, col2im and the bias sums: forward, weight gradient and
 * input gradient, none for conv1's input) timed one after another with nothing else running, at the
 * preset and batch of the benchmark. Their GFLOP/s over the all-core ceiling of bench/simd-ceiling.ts
 * is the share `npm run bench` prints on webasm.
 */
import { Conv2dBackward, Conv2dForward, Rng, median, planModel, type Device, type ModelSpec } from '@alexnet-mp/core';
import type { SimdCeiling } from './simd-ceiling.js';

export interface ConvShare {
  /** Multiply-adds x 2 over the median time of the conv layers' forward and backward passes, one tower. */
  readonly gflops: number;
  readonly ms: number;
  /** gflops / the all-thread ceiling. */
  readonly share: number;
}

/** n floats from the project's seeded generator (as train-step.ts makes its images). */
export function filled(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

export async function convShare(device: Device, spec: ModelSpec, batch: number, ceiling: SimdCeiling, iters = 3): Promise<ConvShare> {
  const layers = planModel(spec).filter((p) => p.layer.type === 'conv');
  let flops = 0;
  const runs: (() => Promise<void>)[] = [];
  layers.forEach((plan, i) => {
    const l = plan.layer;
    if (l.type !== 'conv') return;
    const s = { C: plan.inShape.c, N: batch, H: plan.inShape.h, W: plan.inShape.w, O: l.filtersPerTower, R: l.size, stride: l.stride, pad: l.pad };
    const first = i === 0;
    const fwd = new Conv2dForward(device, `share.${l.name}`, s);
    const bwd = new Conv2dBackward(device, `share.${l.name}`, fwd, !first);
    const outPlane = plan.outShape.h * plan.outShape.w;
    const macs = s.O * s.C * s.R * s.R * outPlane * batch;
    flops += 2 * macs * (first ? 2 : 3);
    const x = filled(s.C * batch * s.H * s.W, 1);
    const w = filled(s.O * s.C * s.R * s.R, 2);
    const b = filled(s.O, 3);
    const dy = filled(s.O * batch * outPlane, 4);
    runs.push(async () => {
      const { state } = await fwd.run(x, w, b);
      await bwd.run(x, w, dy, state);
    });
  });
  const times: number[] = [];
  for (let it = 0; it <= iters; it++) {
    const t0 = performance.now();
    for (const r of runs) await r();
    // the first round compiles the kernels
    if (it > 0) times.push(performance.now() - t0);
  }
  const ms = median(times);
  const gflops = flops / (ms / 1000) / 1e9;
  return { gflops, ms, share: gflops / ceiling.allThreads };
}
