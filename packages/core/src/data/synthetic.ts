/**
 * Synthetic training images (`--data synthetic`): class c is a sinusoidal grating whose orientation
 * (8 directions), period and colour balance are fixed by c, with a random phase per image and Gaussian pixel
 * noise; uint8, CNHW. The batch of (seed, step) is a function of those two alone, drawn from one Rng in
 * order: per image its label, its phase, then its noise, two pixels a draw (channel by channel, row by row).
 *
 * The noise is the normal distribution in 4,096 equally likely values (NOISE_TABLE: the quantiles at the
 * bins' middles, so |z| < 3.7), each pixel's picked by 12 bits of a draw: a table look-up a pixel rather than
 * a logarithm, a square root and a sine or cosine a pair, which kept the coordinator busy for most of a tiny
 * step. An image takes a fixed number of draws (2 + ceil(C x S x S / 2)), so a paper-sized batch (128 x 3 x
 * 224 x 224, 19 M pixels) is made in parallel by worker threads, each starting where the one Rng would be at
 * its first image (mulberry32 advances its state by a constant a draw): the same bytes as made in order on one
 * thread (test/synthetic.test.ts).
 */
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { Rng, deriveSeed, normalQuantile } from '../random.js';
import { startWorker } from './threads.js';

export interface SyntheticShape {
  readonly inputSize: number;
  readonly inputChannels: number;
  readonly classes: number;
}

export interface SyntheticBatch {
  /** uint8 pixels, CNHW [channels][N][size][size]. */
  readonly images: Uint8Array;
  /** Class index per image. */
  readonly labels: Uint32Array;
}

/** The noise's standard deviation, in pixel values. */
export const NOISE_STD = 16;
/** NOISE_STD times the standard normal's quantiles at (k + 0.5) / 4096: a pixel's noise is entry k for 12 random bits k. */
export const NOISE_TABLE = Float64Array.from({ length: 4096 }, (_, k) => NOISE_STD * normalQuantile((k + 0.5) / 4096));

/** mulberry32's step: the state advances by this much at every draw (random.ts Rng.next). */
const STEP = 0x6d2b79f5;

/** The Rng's state at the start of batch (seed, step). */
export const syntheticSeed = (seed: number, step: number) => deriveSeed(seed, 0x5d47a, step) >>> 0;

/** Draws an image takes: its label, its phase and its noise, two pixels a draw. */
export const drawsPerImage = (s: SyntheticShape) => 2 + Math.ceil((s.inputChannels * s.inputSize * s.inputSize) / 2);

/** The state after `draws` draws from `state` (mod 2^32: Math.imul keeps the low 32 bits of the product). */
const advance = (state: number, draws: number) => (state + Math.imul(draws, STEP)) >>> 0;

/**
 * Images [from, to) of a batch, drawn from `rng` (at image `from`), into `images` laid out CNHW for
 * `count` images starting at image `first` (the whole batch: count n, first 0; a part: count to - from, first from).
 */
export function drawImages(s: SyntheticShape, rng: Rng, from: number, to: number, images: Uint8Array, labels: Uint32Array, count: number, first: number): void {
  const { inputSize: S, inputChannels: C, classes } = s;
  const S2 = S * S;
  const CS2 = C * S2;
  const grating = new Float64Array(S2);
  // an image's noise bins (one spare entry for an odd number of pixels)
  const bins = new Uint16Array(CS2 + 1);
  const noise = NOISE_TABLE;
  for (let i = from; i < to; i++) {
    const c = rng.int(classes);
    labels[i - first] = c;
    const theta = (Math.PI * (c % 8)) / 8;
    const period = 3 + 2 * ((c >> 3) % 4);
    const phase = rng.next() * 2 * Math.PI;
    const kx = (2 * Math.PI * Math.cos(theta)) / period;
    const ky = (2 * Math.PI * Math.sin(theta)) / period;
    // the same sine for every channel: computed once an image
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) grating[y * S + x] = Math.sin(kx * x + ky * y + phase);
    // pixel q of the image (channel by channel, row by row): the high 12 bits of the high (q even) or low half
    // of draw q / 2 (drawn first, in a loop of their own: two simple loops run faster than one that does both)
    for (let q = 0; q < CS2; q += 2) {
      const u = rng.nextUint32();
      bins[q] = u >>> 20;
      bins[q + 1] = (u >>> 4) & 0xfff;
    }
    for (let ch = 0, q = 0; ch < C; ch++) {
      const gain = 30 + 30 * Math.cos(2 * Math.PI * ((c >> 5) * 0.37 + ch / C));
      const base = (ch * count + (i - first)) * S2;
      for (let p = 0; p < S2; p++, q++) {
        // rounded half up as floor(v + 0.5), the 0.5 added first (Math.round is several times slower here)
        const v = 128.5 + gain * grating[p]! + noise[bins[q]!]!;
        images[base + p] = v <= 0 ? 0 : v >= 255 ? 255 : v | 0;
      }
    }
  }
}

/** The batch of (seed, step) with `n` images, made on this thread. */
export function synthesise(s: SyntheticShape, seed: number, step: number, n: number): SyntheticBatch {
  const { images, labels } = drawPart({ id: 0, shape: s, from: 0, to: n, state: syntheticSeed(seed, step) });
  return { images, labels };
}

/** A part of a batch made by a thread: its images CNHW for count images. */
export interface SyntheticPartRequest {
  readonly id: number;
  readonly shape: SyntheticShape;
  readonly from: number;
  readonly to: number;
  readonly state: number;
}

export interface SyntheticPartReply {
  readonly id: number;
  readonly images: Uint8Array;
  readonly labels: Uint32Array;
}

/** Makes a part (in a worker thread, or here). */
export function drawPart(r: SyntheticPartRequest): SyntheticPartReply {
  const count = r.to - r.from;
  const images = new Uint8Array(r.shape.inputChannels * count * r.shape.inputSize * r.shape.inputSize);
  const labels = new Uint32Array(count);
  drawImages(r.shape, new Rng(r.state), r.from, r.to, images, labels, count, r.from);
  return { id: r.id, images, labels };
}

/** Batches of at least this many pixels are made by worker threads (below, a thread's start costs more than it saves). */
export const PARALLEL_MIN_PIXELS = 1 << 21;

/** Makes synthetic batches, the large ones on a few worker threads (started when first needed; `close` ends them). */
export class SyntheticBatches {
  private pool: Worker[] | null = null;
  /** Set when the threads failed (they could not start, or one died): every batch is then made on this thread. */
  private failed: Error | null = null;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: SyntheticPartReply) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly shape: SyntheticShape,
    private readonly seed: number,
    private readonly threads = Math.min(8, os.availableParallelism()),
    private readonly parallelMinPixels = PARALLEL_MIN_PIXELS,
  ) {}

  async batch(step: number, n: number): Promise<SyntheticBatch> {
    const s = this.shape;
    const pixels = s.inputChannels * n * s.inputSize * s.inputSize;
    const parts = Math.min(this.threads, n);
    if (pixels < this.parallelMinPixels || parts < 2 || this.failed) return synthesise(s, this.seed, step, n);
    const start = syntheticSeed(this.seed, step);
    const per = drawsPerImage(s);
    const bounds = Array.from({ length: parts + 1 }, (_, k) => Math.round((k * n) / parts));
    let replies: SyntheticPartReply[];
    try {
      replies = await Promise.all(bounds.slice(0, -1).map((from, k) => this.part({ id: this.nextId++, shape: { inputSize: s.inputSize, inputChannels: s.inputChannels, classes: s.classes }, from, to: bounds[k + 1]!, state: advance(start, from * per) })));
    } catch (e) {
      // closed meanwhile (nothing failed): the batch is not wanted any more
      if (!this.failed) throw e;
      // the threads failed (broken): made here, as every batch of this source from now on
      return synthesise(s, this.seed, step, n);
    }
    const S2 = s.inputSize * s.inputSize;
    const images = new Uint8Array(pixels);
    const labels = new Uint32Array(n);
    for (const [k, r] of replies.entries()) {
      const from = bounds[k]!;
      const count = bounds[k + 1]! - from;
      labels.set(r.labels, from);
      for (let ch = 0; ch < s.inputChannels; ch++) images.set(r.images.subarray(ch * count * S2, (ch + 1) * count * S2), (ch * n + from) * S2);
    }
    return { images, labels };
  }

  private startPool(): Worker[] {
    const pool: Worker[] = [];
    try {
      for (let k = 0; k < this.threads; k++) {
        const w = startWorker(new URL('./synthetic-worker.ts', import.meta.url), null);
        pool.push(w);
        // a pool's events count only while it is the pool (a late error of an ended one is not the next one's)
        w.on('message', (m: SyntheticPartReply) => {
          if (this.pool !== pool) return;
          const p = this.waiting.get(m.id);
          this.waiting.delete(m.id);
          this.holdOpen();
          p?.resolve(m);
        });
        // a thread that fails or ends (while working or idle) fails what waits and ends the pool: the source makes
        // its batches itself from then on, and nothing is sent to a thread that is gone
        w.on('error', (e) => this.pool === pool && this.broken(e));
        w.on('exit', (code) => this.pool === pool && this.broken(new Error(`a synthetic-batch thread exited (${code})`)));
      }
    } catch (e) {
      for (const w of pool) void w.terminate();
      throw e;
    }
    return pool;
  }

  private part(r: SyntheticPartRequest): Promise<SyntheticPartReply> {
    try {
      this.pool ??= this.startPool();
    } catch (e) {
      this.broken(e instanceof Error ? e : new Error(String(e)));
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.waiting.set(r.id, { resolve, reject });
      this.holdOpen();
      this.pool![r.id % this.pool!.length]!.postMessage(r);
    });
  }

  /** The threads keep the process alive while a part is being made, and not otherwise. */
  private holdOpen(): void {
    for (const w of this.pool ?? []) {
      if (this.waiting.size > 0) w.ref();
      else w.unref();
    }
  }

  private broken(e: Error): void {
    this.failed ??= e;
    this.close();
  }

  private failAll(e: Error): void {
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  /** Ends the worker threads (a later large batch starts them again); a batch being made by them is given up. */
  close(): void {
    const pool = this.pool;
    this.pool = null;
    this.failAll(new Error('the synthetic batches were closed'));
    for (const w of pool ?? []) void w.terminate();
  }
}
