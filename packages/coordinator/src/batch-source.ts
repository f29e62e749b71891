/**
 * Where the coordinator's batches come from. A source gives the batch of a
 * given step, deterministically, as uint8 images (what travels to the
 * workers) and class indices. Real data loaders (CIFAR-10, ImageNet) come
 * later and implement the same interface.
 */
import { Rng, deriveSeed, type ModelSpec } from '@alexnet-mp/core';

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
 * phase per image and Gaussian pixel noise. Learnable, cheap, deterministic.
 */
export class SyntheticSource implements BatchSource {
  readonly description: string;

  constructor(private readonly spec: ModelSpec, private readonly seed: number) {
    this.description = `synthetic gratings (${spec.classes} classes, ${spec.inputSize}x${spec.inputSize}), seed ${seed}`;
  }

  async batch(step: number, n: number): Promise<U8Batch> {
    const { inputSize: S, inputChannels: C, classes } = this.spec;
    const rng = new Rng(deriveSeed(this.seed, 0x5d47a, step));
    const images = new Uint8Array(C * n * S * S);
    const labels = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const c = rng.int(classes);
      labels[i] = c;
      const theta = (Math.PI * (c % 8)) / 8;
      const period = 3 + 2 * ((c >> 3) % 4);
      const phase = rng.next() * 2 * Math.PI;
      const kx = (2 * Math.PI * Math.cos(theta)) / period;
      const ky = (2 * Math.PI * Math.sin(theta)) / period;
      for (let ch = 0; ch < C; ch++) {
        const gain = 30 + 30 * Math.cos(2 * Math.PI * ((c >> 5) * 0.37 + ch / C));
        const base = (ch * n + i) * S * S;
        for (let y = 0; y < S; y++) {
          for (let x = 0; x < S; x++) {
            const v = 128 + gain * Math.sin(kx * x + ky * y + phase) + 16 * rng.normal();
            images[base + y * S + x] = Math.max(0, Math.min(255, Math.round(v)));
          }
        }
      }
    }
    return { images, labels };
  }
}

export function createSource(name: SourceName, spec: ModelSpec, seed: number): BatchSource {
  switch (name) {
    case 'synthetic':
      return new SyntheticSource(spec, seed);
  }
}
