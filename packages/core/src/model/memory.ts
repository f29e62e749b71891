/**
 * How much memory a worker needs for a training step of a given batch, estimated from the model as data:
 * checked before a run starts, so that a batch too large for the machine is one line, not an
 * out-of-memory kill or an allocation failure halfway into the first step.
 */
import os from 'node:os';
import type { ModelSpec } from './spec.js';
import { planModel } from './shapes.js';
import { towerParamLayers } from './params.js';

/** The share of the machine's memory the workers of one host may plan to use for their steps. */
export const MEMORY_SHARE = 0.75;

export interface StepMemory {
  /** Bytes that grow with the batch, per image: every layer's output and its gradient, im2col buffers, the input. */
  readonly perImage: number;
  /** Bytes that do not: the tower's parameters, their momentum and their gradients. */
  readonly fixed: number;
}

/** The float32 bytes one tower's step holds at its peak, split into what scales with the batch and what does not. */
export function towerStepMemory(spec: ModelSpec, tower: 0 | 1 = 0): StepMemory {
  let perImage = spec.inputChannels * spec.inputSize * spec.inputSize;
  let largestCols = 0;
  for (const p of planModel(spec)) {
    if (p.tower0Only && tower !== 0) continue;
    // each output, and its gradient on the way back
    perImage += 2 * p.outShape.c * p.outShape.h * p.outShape.w;
    if (p.layer.type === 'conv') largestCols = Math.max(largestCols, p.inShape.c * p.layer.size * p.layer.size * p.outShape.h * p.outShape.w);
  }
  // a convolution's unfolded input (forward) and its gradient (backward)
  perImage += 2 * largestCols;
  let params = 0;
  for (const l of towerParamLayers(spec, tower)) params += l.shape.reduce((a, b) => a * b, 1) + l.shape[0];
  return { perImage: 4 * perImage, fixed: 4 * 3 * params };
}

/** The estimate for `batch` images. */
export function stepBytes(m: StepMemory, batch: number): number {
  return m.fixed + m.perImage * batch;
}

/** The largest batch whose estimate fits in `bytes` (0 when not even the parameters do). */
export function largestBatchWithin(m: StepMemory, bytes: number): number {
  return Math.max(0, Math.floor((bytes - m.fixed) / m.perImage));
}

/** Bytes as "1.5 GiB". */
export const formatGiB = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export interface MemoryShortfall {
  /** What a step of the batch needs on each worker, and on all of them. */
  readonly each: number;
  readonly need: number;
  /** The machine's memory, of which MEMORY_SHARE is what the workers may use. */
  readonly total: number;
  /** The largest batch whose steps fit. */
  readonly largest: number;
}

/**
 * Whether `workers` workers of tower `tower` fit a step of `batch` images in MEMORY_SHARE of this machine's
 * memory (`totalBytes`): null when they do, else what they need and what would fit.
 */
export function memoryShortfall(spec: ModelSpec, batch: number, o: { workers?: number; tower?: 0 | 1; totalBytes?: number } = {}): MemoryShortfall | null {
  const workers = o.workers ?? 1;
  const total = o.totalBytes ?? os.totalmem();
  const m = towerStepMemory(spec, o.tower ?? 0);
  const each = stepBytes(m, batch);
  const have = MEMORY_SHARE * total;
  if (workers * each <= have) return null;
  return { each, need: workers * each, total, largest: largestBatchWithin(m, have / workers) };
}
