/**
 * The dashboard's pictures, from the running workers: each tower's conv1 kernels, refreshed every
 * `refreshMs` while a page watches and only when training moved on, and the feature maps of a test image.
 * Workers answer these calls only between steps, so every fetch goes through Coordinator.betweenSteps:
 * training waits for one fetch at most once per refresh, never longer than the fetch. PNGs are cached
 * (the kernels until the next refresh, feature maps per image, layer and step).
 */
import { towerParamLayers, type ModelSpec } from '@alexnet-mp/core';
import type { U8Batch } from '../batch-source.js';
import type { Coordinator } from '../coordinator.js';
import { colourScore } from '../inspect/colour.js';
import { kernelTiles, tileGrid } from '../inspect/grid.js';
import { encodePng, inputRaster } from '../inspect/png.js';
import type { DashboardFeed } from './feed.js';
import type { DashboardImages, StepImage } from './server.js';

export interface LiveImagesOptions {
  readonly coordinator: Pick<Coordinator, 'betweenSteps' | 'clients' | 'stepsCompleted'>;
  readonly spec: ModelSpec;
  readonly feed: DashboardFeed;
  /** Held-out images whose feature maps the page can show (uint8 CNHW, as sent to the workers). */
  readonly testBatch: U8Batch | null;
  /** How often the kernels are fetched while a page watches (ms). */
  readonly refreshMs: number;
  readonly info?: (line: string) => void;
}

/** Test images offered to the page. */
export const MAX_TEST_IMAGES = 8;

export class LiveImages implements DashboardImages {
  private readonly kernelCache: (StepImage | null)[] = [null, null];
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly conv1: { name: string; shape: [number, number, number, number] };
  readonly testImages: readonly { index: number; label: number }[];
  readonly layers: readonly string[] = [];

  constructor(private readonly o: LiveImagesOptions) {
    this.conv1 = towerParamLayers(o.spec, 0)[0]!;
    const n = o.testBatch ? o.testBatch.labels.length : 0;
    this.testImages = Array.from({ length: Math.min(MAX_TEST_IMAGES, n) }, (_, i) => ({ index: i, label: o.testBatch!.labels[i]! }));
  }

  kernels(tower: number): StepImage | null {
    return this.kernelCache[tower] ?? null;
  }

  watching(on: boolean): void {
    if (on && !this.timer) {
      void this.refresh();
      this.timer = setInterval(() => void this.refresh(), this.o.refreshMs);
      this.timer.unref();
    } else if (!on && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Fetches both towers' conv1 kernels if training moved on since the last fetch (one fetch at a time). */
  refresh(): Promise<void> {
    this.refreshing ??= this.fetchKernels()
      .catch((e: unknown) => this.o.info?.(`dashboard: could not fetch the kernels: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async fetchKernels(): Promise<void> {
    const c = this.o.coordinator;
    const cached = this.kernelCache[0];
    if (cached && cached.step === c.stepsCompleted) return;
    const { step, weights } = await c.betweenSteps(async () => ({
      step: c.stepsCompleted,
      weights: await Promise.all(c.clients.map(async (client) => (await client.parameters(false)).get(this.conv1.name)!.w)),
    }));
    await Promise.all(
      weights.map(async (w, t) => {
        const shape = this.conv1.shape;
        const png = await encodePng(tileGrid(kernelTiles(w, shape), { range: 'each', signed: true }, { columns: Math.min(16, shape[0]) }));
        const colour = shape[1] === 3 ? colourScore(w, shape).mean : null;
        this.kernelCache[t] = { png, step, colour };
        this.o.feed.publish({ type: 'kernels', tower: t, step, colour });
      }),
    );
  }

  async testImagePng(index: number): Promise<Uint8Array> {
    const b = this.o.testBatch!;
    const S = this.o.spec.inputSize;
    return encodePng(inputRaster(b.images, b.labels.length, index, S, Math.max(1, Math.ceil(48 / S))));
  }

  async activations(_tower: number, _index: number, layer: string): Promise<StepImage> {
    throw new Error(`feature maps of ${layer}: not available from these workers yet`);
  }
}
