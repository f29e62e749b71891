/**
 * The dashboard's pictures, from the running workers (or a run folder's latest checkpoint: run-dashboard.ts):
 * each tower's conv1 kernels, refreshed every
 * `refreshMs` while a page watches and only when training moved on, and the feature maps of a test image.
 * Workers answer these calls only between steps, so every fetch goes through Coordinator.betweenSteps:
 * training waits for one fetch at most once per refresh, never longer than the fetch. PNGs are cached
 * (the kernels until the next refresh, feature maps per image, layer and step).
 */
import type { ModelSpec } from '@alexnet-mp/core';
import type { U8Batch } from '../batch-source.js';
import { colourScore } from '../inspect/colour.js';
import { featureTiles, kernelTiles, tileGrid, valueRange, type Tiles } from '../inspect/grid.js';
import { kernelLayers, mapShape } from '../inspect/layers.js';
import type { LiveInspector } from '../inspect/live.js';
import { encodePng, inputRaster } from '../inspect/png.js';
import type { DashboardFeed } from './feed.js';
import type { DashboardImages, StepImage } from './server.js';

export interface LiveImagesOptions {
  /** Kernels and feature maps: from the running workers, between steps (inspect/live.ts), or a checkpoint (inspect/source.ts). */
  readonly inspector: Pick<LiveInspector, 'kernels' | 'activations'>;
  /** The steps the weights the inspector reads have had: the pictures are fetched again once it moves on. */
  readonly stepsDone: () => number;
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

/** Image `j` of a uint8 CNHW batch of `n` as a batch of one. */
export function oneImage(images: Uint8Array, n: number, j: number, channels: number): Uint8Array {
  const plane = images.length / (channels * n);
  const out = new Uint8Array(channels * plane);
  for (let c = 0; c < channels; c++) out.set(images.subarray((c * n + j) * plane, (c * n + j + 1) * plane), c * plane);
  return out;
}

export class LiveImages implements DashboardImages {
  private readonly kernelCache: (StepImage | null)[] = [null, null];
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  /** The feature maps last fetched for each (image, layer): both towers' PNGs, fetched once for both. */
  private readonly mapCache = new Map<string, { maps: Promise<[StepImage, StepImage]>; done: [StepImage, StepImage] | null }>();
  private readonly kernelLayer: string;
  readonly testImages: readonly { index: number; label: number }[];
  /**
   * Layers both towers compute (fc8 is tower 0's alone), but not ReLU (the workers give conv and fc layers after
   * their ReLU already) nor dropout (the identity when evaluating).
   */
  readonly layers: readonly string[];

  constructor(private readonly o: LiveImagesOptions) {
    this.kernelLayer = kernelLayers(o.spec)[0]!;
    const n = o.testBatch ? o.testBatch.labels.length : 0;
    this.testImages = Array.from({ length: Math.min(MAX_TEST_IMAGES, n) }, (_, i) => ({ index: i, label: o.testBatch!.labels[i]! }));
    this.layers = o.spec.layers.filter((l) => l.type !== 'relu' && l.type !== 'dropout' && mapShape(o.spec, l.name).towers.length === 2).map((l) => l.name);
  }

  private get stepsDone(): number {
    return this.o.stepsDone();
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
    const cached = this.kernelCache[0];
    // nothing to fetch before the workers are configured, nor twice for the same step
    if (!this.o.feed.started || (cached && cached.step === this.stepsDone)) return;
    const k = await this.o.inspector.kernels(this.kernelLayer);
    await Promise.all(
      k.towers.map(async ({ w, shape }, t) => {
        const png = await encodePng(tileGrid(kernelTiles(w, shape), { range: 'each', signed: true }, { columns: Math.min(16, shape[0]) }));
        const colour = shape[1] === 3 ? colourScore(w, shape).mean : null;
        this.kernelCache[t] = { png, step: k.step, colour };
        this.o.feed.publish({ type: 'kernels', tower: t, step: k.step, colour });
      }),
    );
  }

  async testImagePng(index: number): Promise<Uint8Array> {
    const b = this.o.testBatch!;
    const S = this.o.spec.inputSize;
    return encodePng(inputRaster(b.images, b.labels.length, index, S, Math.max(1, Math.ceil(48 / S))));
  }

  /** A tower's feature maps of a test image, both towers on one scale; fetched again once training moved on. */
  async activations(tower: number, index: number, layer: string): Promise<StepImage> {
    const key = `${index}/${layer}`;
    let entry = this.mapCache.get(key);
    // a fetch in flight serves every request (both towers' pages ask at once); a finished one until training moves on
    if (!entry || (entry.done && entry.done[0].step !== this.stepsDone)) {
      const e: { maps: Promise<[StepImage, StepImage]>; done: [StepImage, StepImage] | null } = { maps: this.fetchMaps(index, layer), done: null };
      e.maps.then(
        (m) => (e.done = m),
        () => this.mapCache.delete(key),
      );
      this.mapCache.set(key, e);
      entry = e;
    }
    return (await entry.maps)[tower]!;
  }

  private async fetchMaps(index: number, layer: string): Promise<[StepImage, StepImage]> {
    const b = this.o.testBatch!;
    const { spec } = this.o;
    const a = await this.o.inspector.activations(oneImage(b.images, b.labels.length, index, spec.inputChannels), layer);
    const { shape } = mapShape(spec, layer);
    const tiles = a.towers.map((x) => featureTiles(x!, shape)) as [Tiles, Tiles];
    // one scale for both towers' maps (as inspect/grid.ts's featureMapGrid), so that they compare
    const r = valueRange(tiles);
    const signed = r.min < 0;
    const range = signed ? Math.max(-r.min, r.max) : r.max;
    const columns = Math.min(16, tiles[0].count);
    const pngs = await Promise.all(tiles.map((t) => encodePng(tileGrid(t, { range, signed }, { columns, minTile: 32 }))));
    return [{ png: pngs[0]!, step: a.step }, { png: pngs[1]!, step: a.step }];
  }
}
