/**
 * Where the coordinator's batches come from. A source gives the batch of a
 * given step, deterministically, as uint8 images (what travels to the
 * workers) and class indices. Real data loaders (CIFAR-10, ImageNet) come
 * later and implement the same interface.
 */
import type { ModelSpec } from '@alexnet-mp/core';
import { SyntheticBatches } from '@alexnet-mp/core/data';

export interface U8Batch {
  /** uint8 pixels, layout CNHW [channels][N][size][size]. */
  readonly images: Uint8Array;
  /** Class index per image. */
  readonly labels: Uint32Array;
}

export interface BatchSource {
  /** One line for logs, e.g. "synthetic gratings, seed 1". */
  readonly description: string;
  /**
   * The training batch of step `step` with `size` images. The same (step,
   * size) gives the same batch, so a run can be repeated or resumed.
   */
  batch(step: number, size: number): Promise<U8Batch>;
  /** The per-channel mean (pixel levels) the workers subtract from these images: the training set's; absent, 128. */
  readonly inputMean?: readonly number[];
  close?(): Promise<void>;
}

export const sourceNames = ['synthetic'] as const;
export type SourceName = (typeof sourceNames)[number];

/**
 * Seeded synthetic images: class c is a sinusoidal grating whose orientation
 * (8 directions), period and colour balance are fixed by c, with a random
 * phase per image and Gaussian pixel noise. Learnable, cheap, deterministic
 * (core's data/synthetic.ts; large batches made on worker threads).
 */
export class SyntheticSource implements BatchSource {
  readonly description: string;
  private readonly batches: SyntheticBatches;

  constructor(spec: ModelSpec, seed: number) {
    this.description = `synthetic gratings (${spec.classes} classes, ${spec.inputSize}x${spec.inputSize}), seed ${seed}`;
    this.batches = new SyntheticBatches(spec, seed);
  }

  batch(step: number, n: number): Promise<U8Batch> {
    return this.batches.batch(step, n);
  }

  async close(): Promise<void> {
    this.batches.close();
  }
}

export function createSource(name: SourceName, spec: ModelSpec, seed: number): BatchSource {
  switch (name) {
    case 'synthetic':
      return new SyntheticSource(spec, seed);
  }
}
