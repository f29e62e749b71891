/**
 * Test images with the network's top-5 guesses, as one PNG (in the manner of
 * cuda-convnet's `shownet --show-preds`): each image, its true label, and
 * five bars with the class names and softmax probabilities; the true class's
 * bar is green, the others blue; the label is red when the top guess is wrong.
 * Text and bars are an SVG that sharp renders; the images are composited on it.
 */
import sharp, { type OverlayOptions } from 'sharp';
import type { Raster } from './grid.js';

/** One image's softmax over the classes (float64), from logits laid out [class][image]. */
export function softmaxColumn(logits: ArrayLike<number>, classes: number, n: number, j: number): Float64Array {
  const p = new Float64Array(classes);
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, logits[c * n + j]!);
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += p[c] = Math.exp(logits[c * n + j]! - max);
  for (let c = 0; c < classes; c++) p[c]! /= sum;
  return p;
}

export interface Guess {
  readonly cls: number;
  readonly p: number;
}

/** The k most probable classes, most probable first (ties: lower class first). */
export function topK(p: ArrayLike<number>, k: number): Guess[] {
  return Array.from({ length: p.length }, (_, cls) => ({ cls, p: p[cls]! }))
    .sort((a, b) => b.p - a.p || a.cls - b.cls)
    .slice(0, k);
}

export interface PredictedImage {
  /** The image as the network saw it (inputRaster), any size. */
  readonly image: Raster;
  /** The true class, or null when unknown. */
  readonly label: number | null;
  /** Probabilities of every class. */
  readonly probs: ArrayLike<number>;
}

const LINE = 16;
const PAD = 8;
const FONT = 'DejaVu Sans, Liberation Sans, sans-serif';

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** Pixel size of the predictions picture for `n` images of side `image` (see predictionsPng). */
export function predictionsSize(n: number, image: number, columns = 4, top = 5): { width: number; height: number; cellWidth: number; cellHeight: number; columns: number } {
  const cols = Math.max(1, Math.min(columns, n));
  const cellWidth = Math.max(image, 180) + 2 * PAD;
  const cellHeight = PAD + image + 4 + LINE * (1 + top) + PAD;
  return { width: cols * cellWidth, height: Math.ceil(n / cols) * cellHeight, cellWidth, cellHeight, columns: cols };
}

/** The picture as PNG bytes; `classNames[c]` names class c (missing names print as "class c"). */
export async function predictionsPng(items: readonly PredictedImage[], classNames: readonly string[], o: { columns?: number; top?: number } = {}): Promise<Buffer> {
  if (items.length === 0) throw new Error('no images to show');
  const top = o.top ?? 5;
  const side = Math.max(...items.map((i) => Math.max(i.image.width, i.image.height)));
  const { width, height, cellWidth, cellHeight, columns } = predictionsSize(items.length, side, o.columns, top);
  const name = (c: number) => classNames[c] ?? `class ${c}`;
  const svg: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`, `<rect width="${width}" height="${height}" fill="white"/>`];
  const composites: OverlayOptions[] = [];
  items.forEach((it, j) => {
    const x0 = (j % columns) * cellWidth + PAD;
    const y0 = Math.floor(j / columns) * cellHeight + PAD;
    composites.push({ input: Buffer.from(it.image.data), raw: { width: it.image.width, height: it.image.height, channels: 3 }, left: x0, top: y0 });
    const guesses = topK(it.probs, top);
    const right = it.label !== null && guesses[0]?.cls === it.label;
    let y = y0 + side + 4;
    const labelText = it.label === null ? 'label unknown' : `true: ${name(it.label)}`;
    svg.push(`<text x="${x0}" y="${y + LINE - 4}" font-family="${FONT}" font-size="12" font-weight="bold" fill="${it.label === null || right ? '#000' : '#c00'}">${escapeXml(labelText)}</text>`);
    y += LINE;
    const barMax = cellWidth - 2 * PAD;
    for (const g of guesses) {
      const w = Math.max(1, Math.round(g.p * barMax));
      svg.push(`<rect x="${x0}" y="${y + 2}" width="${w}" height="${LINE - 4}" fill="${g.cls === it.label ? '#7c7' : '#9bd'}"/>`);
      svg.push(`<text x="${x0 + 2}" y="${y + LINE - 4}" font-family="${FONT}" font-size="11" fill="#000">${escapeXml(`${name(g.cls)} ${(100 * g.p).toFixed(1)}%`)}</text>`);
      y += LINE;
    }
  });
  svg.push('</svg>');
  return sharp(Buffer.from(svg.join('\n'))).flatten({ background: '#ffffff' }).composite(composites).png().toBuffer();
}
