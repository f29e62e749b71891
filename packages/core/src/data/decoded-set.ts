/**
 * A decoded split: `count` images of `size` x `size` RGB pixels, uint8, each
 * stored CHW ([3][size][size]), with a class index per image. Held in memory
 * (CIFAR-10's binary batches, small caches) or read from a decoded cache file
 * (cache-file.ts) image by image.
 */
import { resizeAreaChw } from './decode.js';

export interface DecodedSet {
  readonly count: number;
  /** Side of every (square) image. */
  readonly size: number;
  readonly classes: readonly string[];
  /** Class index per image. */
  readonly labels: Uint32Array;
  /**
   * Image `i`, CHW uint8 [3][size][size]. May be a view into a buffer that
   * the next call reuses: copy it to keep it.
   */
  image(i: number): Uint8Array;
  close?(): void;
}

export class MemorySet implements DecodedSet {
  readonly count: number;

  constructor(
    /** count x [3][size][size] */
    readonly pixels: Uint8Array,
    readonly labels: Uint32Array,
    readonly size: number,
    readonly classes: readonly string[],
  ) {
    this.count = labels.length;
    if (pixels.length !== this.count * 3 * size * size) {
      throw new Error(`MemorySet: ${pixels.length} bytes for ${this.count} images of 3x${size}x${size}`);
    }
  }

  image(i: number): Uint8Array {
    const n = 3 * this.size * this.size;
    return this.pixels.subarray(i * n, (i + 1) * n);
  }
}

/** Another set's images resized (area averaging) to `size`, one at a time as they are read. */
export class ResizedSet implements DecodedSet {
  private readonly buf: Uint8Array;

  constructor(private readonly inner: DecodedSet, readonly size: number) {
    this.buf = new Uint8Array(3 * size * size);
  }

  get count(): number {
    return this.inner.count;
  }
  get classes(): readonly string[] {
    return this.inner.classes;
  }
  get labels(): Uint32Array {
    return this.inner.labels;
  }

  image(i: number): Uint8Array {
    return resizeAreaChw(this.inner.image(i), 3, this.inner.size, this.size, this.buf);
  }

  close(): void {
    this.inner.close?.();
  }
}
