/**
 * What `alexnet inspect` draws, from what a source (checkpoint or live) gave:
 * the kernels picture with each tower's colour score, the feature-map
 * picture of one image, the predictions picture.
 */
import type { ModelSpec } from '@alexnet-mp/core';
import { colourScore, type ColourScore } from './colour.js';
import { featureMapGrid, featureTiles, kernelGrid, kernelTiles, parseInputSelection, type GridOptions, type Raster } from './grid.js';
import { mapShape } from './layers.js';
import type { ActivationsAt, KernelsAt, PredictionsAt } from './live.js';
import { inputRaster } from './png.js';
import { predictionsPng, softmaxColumn } from './predictions.js';
import { UserError } from '../cli/errors.js';

export interface KernelPicture {
  readonly raster: Raster;
  /** Each tower's colour score (null when the kernels are not RGB). */
  readonly scores: [ColourScore | null, ColourScore | null];
  /** What the picture shows of each kernel, e.g. "RGB" or "input channel 5". */
  readonly shows: string;
}

/** Both towers' kernels as one picture (tower 0 above tower 1); `inputIdx` as --input-idx (see grid.ts). */
export function kernelPicture(k: KernelsAt, inputIdx?: string | number, o: GridOptions = {}): KernelPicture {
  const shape = k.towers[0].shape;
  let sel;
  try {
    sel = parseInputSelection(inputIdx, shape[1]);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const raster = kernelGrid([kernelTiles(k.towers[0].w, shape, sel), kernelTiles(k.towers[1].w, shape, sel)], o);
  const scores = k.towers.map((t) => (shape[1] === 3 ? colourScore(t.w, shape) : null)) as [ColourScore | null, ColourScore | null];
  const shows = shape[1] === 3 && sel.count === 3 ? 'RGB' : sel.count === 3 ? `input channels ${sel.start}..${sel.start + 2} as RGB` : `input channel ${sel.start} of ${shape[1]}`;
  return { raster, scores, shows };
}

/** Image `j`'s feature maps on both towers, one picture (tower 0 above tower 1; one scale for both unless 'each'). */
export function activationPicture(spec: ModelSpec, layer: string, a: ActivationsAt, n = 1, j = 0, o: GridOptions & { scale?: 'shared' | 'each' } = {}): Raster {
  const [C, H, W] = mapShape(spec, layer).shape;
  const plane = H * W;
  // one image's maps out of [C][N][H][W] (fc: [C][N])
  const pick = (x: Float32Array | null) => {
    if (!x) return null;
    const out = new Float32Array(C * plane);
    for (let c = 0; c < C; c++) out.set(x.subarray((c * n + j) * plane, (c * n + j + 1) * plane), c * plane);
    return featureTiles(out, [C, H, W]);
  };
  return featureMapGrid([pick(a.towers[0]), pick(a.towers[1])], o);
}

/** The predictions picture (PNG bytes). */
export function predictionsPicture(spec: ModelSpec, p: PredictionsAt, columns?: number): Promise<Buffer> {
  const n = p.labels.length;
  const S = spec.inputSize;
  const zoom = Math.max(1, Math.floor(128 / S));
  const items = Array.from({ length: n }, (_, j) => ({ image: inputRaster(p.images, n, j, S, zoom), label: p.labels[j]!, probs: softmaxColumn(p.logits, spec.classes, n, j) }));
  return predictionsPng(items, p.classNames, { columns });
}

/** "0.412 (median 0.398) over 32 kernels". */
export const describeScore = (s: ColourScore): string => `${s.mean.toFixed(3)} (median ${s.median.toFixed(3)}) over ${s.shares.length} kernels`;
