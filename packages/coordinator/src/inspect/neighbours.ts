/**
 * The held-out images nearest to a query image in a layer's space (Euclidean distance between rows of
 * features.ts), as the paper's Figure 4 shows for fc7: images whose pixels differ but which the network
 * holds alike. The query is an image file or a held-out image (then left out of its own neighbours).
 */
import sharp, { type OverlayOptions } from 'sharp';
import type { FeatureExtractor } from '../features.js';
import { featureBatches, squaredDistance } from '../features.js';
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

/** The `count` nearest held-out images to the query, nearest first (ties: the earlier image first); the images searched. */
export async function nearestHeldOut(model: TrainedModel, data: Pick<TrainingData, 'heldOutSubset'>, extractor: FeatureExtractor, s: NeighbourSearch): Promise<{ neighbours: Neighbour[]; searched: number }> {
  const { dim, layer } = extractor.layout;
  let best: Neighbour[] = [];
  let searched = 0;
  for await (const b of featureBatches(model, data, { layer, limit: s.limit }, extractor)) {
    for (let j = 0; j < b.n; j++) {
      const index = b.indices[j]!;
      if (index === s.exclude) continue;
      searched++;
      const distance = Math.sqrt(squaredDistance(b.rows, j, dim, s.query));
      if (best.length === s.count && distance >= best[best.length - 1]!.distance) continue;
      best.push({ index, label: b.labels[j]!, distance, image: oneImage(b.images, b.n, j, 3) });
      best.sort((x, y) => x.distance - y.distance || x.index - y.index);
      if (best.length > s.count) best = best.slice(0, s.count);
    }
  }
  return { neighbours: best, searched };
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
