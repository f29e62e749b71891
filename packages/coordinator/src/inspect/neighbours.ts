/**
 * The held-out images nearest to a query image in a layer's space (Euclidean distance between rows of
 * features.ts), as the paper's Figure 4 shows for fc7: images whose pixels differ but which the network
 * holds alike. The query is an image file or a held-out image (then left out of its own neighbours).
 */
import sharp, { type OverlayOptions } from 'sharp';
import type { FeatureExtractor } from '../features.js';
import { FEATURE_BATCH, featureBatches, squaredDistance } from '../features.js';
import type { FeatureFile, RowBatch } from './feature-file.js';
import { UserError } from '../cli/errors.js';
import type { TrainedModel } from '../trained-model.js';
import type { TrainingData } from '../training-data.js';
import { inputRaster } from './png.js';
import { oneImage } from '../dashboard/live-images.js';
import type { Raster } from './grid.js';

export interface Neighbour {
  /** Its place in the held-out split. */
  readonly index: number;
  readonly label: number;
  readonly distance: number;
  /** The image as the network saw it (uint8 [3][1][S][S]). */
  readonly image: Uint8Array;
}

export interface NeighbourSearch {
  readonly query: Float32Array;
  /** A held-out image that is the query itself: never its own neighbour. */
  readonly exclude?: number;
  readonly count: number;
  readonly limit?: number;
}

/** Rows to search, a batch at a time; `images` (uint8 [3][n][S][S]) when the batch has them at hand. */
interface SearchBatch extends RowBatch {
  readonly images?: Uint8Array;
}

/**
 * The `count` rows nearest to the query, nearest first (ties: the earlier image first); the rows searched.
 * `onBatch` hears the images searched so far after each batch.
 */
export async function nearestRows(batches: AsyncIterable<SearchBatch>, dim: number, s: NeighbourSearch, onBatch?: (searched: number) => void): Promise<{ found: (Omit<Neighbour, 'image'> & { image?: Uint8Array })[]; searched: number }> {
  let best: (Omit<Neighbour, 'image'> & { image?: Uint8Array })[] = [];
  let searched = 0;
  for await (const b of batches) {
    onBatch?.(searched);
    for (let j = 0; j < b.n; j++) {
      const index = b.indices[j]!;
      if (index === s.exclude) continue;
      searched++;
      const distance = Math.sqrt(squaredDistance(b.rows, j, dim, s.query));
      if (best.length === s.count && distance >= best[best.length - 1]!.distance) continue;
      best.push({ index, label: b.labels[j]!, distance, image: b.images ? oneImage(b.images, b.n, j, 3) : undefined });
      best.sort((x, y) => x.distance - y.distance || x.index - y.index);
      if (best.length > s.count) best = best.slice(0, s.count);
    }
  }
  return { found: best, searched };
}

/**
 * The `count` nearest held-out images to the query, nearest first (ties: the earlier image first), every held-out
 * image run through the model; the images searched. `onBatch` hears how many were run through so far, a batch at a time.
 */
export async function nearestHeldOut(model: TrainedModel, data: Pick<TrainingData, 'heldOutSubset'>, extractor: FeatureExtractor, s: NeighbourSearch, onBatch?: (searched: number) => void): Promise<{ neighbours: Neighbour[]; searched: number }> {
  const { dim, layer } = extractor.layout;
  const { found, searched } = await nearestRows(featureBatches(model, data, { layer, limit: s.limit }, extractor), dim, s, onBatch);
  return { neighbours: found.map((n) => ({ ...n, image: n.image! })), searched };
}

/** The same from the rows of `alexnet features` (checked by the caller against the model and data), the neighbours' images read from the held-out split. */
export async function nearestInFile(file: FeatureFile, data: Pick<TrainingData, 'heldOut'>, s: NeighbourSearch): Promise<{ neighbours: Neighbour[]; searched: number }> {
  const { found, searched } = await nearestRows(file.batches(), file.meta.dim, s);
  const images = await heldOutImages(data, found.map((n) => n.index), (i, count) => `--features ${file.file}: a row is held-out image ${i}, and the split has ${count} images: make the files again`);
  return { neighbours: found.map((n) => ({ ...n, image: images.get(n.index)!.image })), searched };
}

/**
 * Held-out images by their place in the split (uint8 [3][1][S][S] and label), in one pass over it, cut in batches as
 * the search cuts it (synthetic held-out images depend on it); a UserError for a place past the split's end.
 */
export async function heldOutImages(
  data: Pick<TrainingData, 'heldOut'>,
  indices: readonly number[],
  past: (index: number, count: number) => string = (i, count) => `--index ${i}: the held-out split has ${count} images (0 to ${count - 1})`,
): Promise<Map<number, { image: Uint8Array; label: number }>> {
  const want = new Set(indices);
  const out = new Map<number, { image: Uint8Array; label: number }>();
  let start = 0;
  if (want.size === 0) return out;
  for await (const b of data.heldOut(FEATURE_BATCH, undefined, 'centre').batches()) {
    const n = b.labels.length;
    for (let j = 0; j < n; j++) if (want.has(start + j)) out.set(start + j, { image: oneImage(b.images, n, j, 3), label: b.labels[j]! });
    start += n;
    if (out.size === want.size) return out;
  }
  throw new UserError(past(indices.find((i) => !out.has(i))!, start));
}

export interface Captioned {
  readonly image: Raster;
  readonly lines: readonly string[];
  /** Drawn with a frame (the query). */
  readonly framed?: boolean;
}

const PAD = 8;
const LINE = 14;
const FONT = 'DejaVu Sans, Liberation Sans, sans-serif';
const escapeXml = (t: string) => t.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** Tiles in a row (wrapping after `columns`), each an image with its caption lines below: PNG bytes. */
export async function captionedTilesPng(tiles: readonly Captioned[], columns = 9): Promise<Buffer> {
  if (tiles.length === 0) throw new Error('no images to show');
  const side = Math.max(...tiles.map((t) => t.image.width));
  const lines = Math.max(...tiles.map((t) => t.lines.length));
  const cellW = Math.max(side, 120) + 2 * PAD;
  const cellH = PAD + side + 4 + LINE * lines + PAD;
  const cols = Math.max(1, Math.min(columns, tiles.length));
  const width = cols * cellW;
  const height = Math.ceil(tiles.length / cols) * cellH;
  const svg: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`, `<rect width="${width}" height="${height}" fill="white"/>`];
  const composites: OverlayOptions[] = [];
  tiles.forEach((t, k) => {
    const x0 = (k % cols) * cellW + PAD;
    const y0 = Math.floor(k / cols) * cellH + PAD;
    if (t.framed) svg.push(`<rect x="${x0 - 3}" y="${y0 - 3}" width="${t.image.width + 6}" height="${t.image.height + 6}" fill="#c00"/>`);
    composites.push({ input: Buffer.from(t.image.data), raw: { width: t.image.width, height: t.image.height, channels: 3 }, left: x0, top: y0 });
    t.lines.forEach((l, i) => svg.push(`<text x="${x0}" y="${y0 + side + 4 + LINE * (i + 1) - 3}" font-family="${FONT}" font-size="11" font-weight="${i === 0 ? 'bold' : 'normal'}" fill="#000">${escapeXml(l)}</text>`));
  });
  svg.push('</svg>');
  return sharp(Buffer.from(svg.join('\n'))).flatten({ background: '#ffffff' }).composite(composites).png().toBuffer();
}

/** A single image of `size` pixels (uint8 [3][1][S][S]) as a raster magnified to at least 96 pixels. */
export const tileOf = (image: Uint8Array, size: number): Raster => inputRaster(image, 1, 0, size, Math.max(1, Math.floor(96 / size)));
