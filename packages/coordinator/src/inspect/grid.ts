/**
 * Pictures of what a tower holds: its kernels and its feature maps as grids
 * of tiles (RGB rasters; png.ts writes them). Pure functions of float
 * arrays, for the command line (`alexnet inspect`) and the dashboard alike.
 *
 * Layout of a two-tower picture (as the paper's Figure 3): tower 0's grid
 * above tower 1's, both with the same columns, a light band between them.
 * Tiles are magnified by an integer factor (nearest neighbour) and separated
 * by `gap` pixels of background.
 *
 * Scaling for display:
 * - kernels: each kernel on its own, symmetric about 0: 0 is mid grey and the
 *   kernel's largest |w| is black or full intensity; an RGB kernel keeps its
 *   colour balance (one scale for its three channels), so a grey kernel looks grey;
 * - feature maps: by default one scale for every map of both towers (towers
 *   and maps compare; a dead map is black), or each map on its own
 *   (`scale: 'each'`); maps with no negative value map 0..max to black..white,
 *   signed ones are symmetric about mid grey.
 */

/** An RGB image, interleaved rows [y][x][r, g, b]. */
export interface Raster {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** `count` tiles of `channels` (1: grey, 3: RGB) planes of h x w floats: data [count][channels][h][w]. NaN is background. */
export interface Tiles {
  readonly count: number;
  readonly channels: 1 | 3;
  readonly h: number;
  readonly w: number;
  readonly data: Float32Array;
}

/** Which input channels of a kernel to show: one (grey) or three consecutive ones (as R, G, B). */
export interface InputSelection {
  readonly start: number;
  readonly count: 1 | 3;
}

/** The default selection: all three channels of an RGB kernel, else input channel 0. */
export const defaultSelection = (inChannels: number): InputSelection => (inChannels === 3 ? { start: 0, count: 3 } : { start: 0, count: 1 });

/**
 * Parses `--input-idx`: "K" shows input channel K in grey; "A:B" shows channels A .. B-1, which must be one
 * (grey) or three (RGB) channels. Throws an Error with a message for the user.
 */
export function parseInputSelection(s: string | number | undefined, inChannels: number): InputSelection {
  if (s === undefined || s === '') return defaultSelection(inChannels);
  const text = String(s).trim();
  let start: number;
  let end: number;
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`--input-idx "${text}": give an input channel K or a slice A:B (one or three channels)`);
  start = Number(m[1]);
  end = m[2] === undefined ? start + 1 : Number(m[2]);
  const count = end - start;
  if (count !== 1 && count !== 3) throw new Error(`--input-idx ${text}: a slice shows one channel (grey) or three (as RGB), not ${count}`);
  if (end > inChannels) throw new Error(`--input-idx ${text}: these kernels have ${inChannels} input channels (0..${inChannels - 1})`);
  return { start, count };
}

/** Kernels [out][in][kh][kw] as tiles of the selected input channels. */
export function kernelTiles(weights: Float32Array, shape: readonly [number, number, number, number], sel: InputSelection = defaultSelection(shape[1])): Tiles {
  const [out, inCh, kh, kw] = shape;
  if (weights.length !== out * inCh * kh * kw) throw new Error(`${weights.length} weights are not [${shape.join(', ')}]`);
  if (sel.start < 0 || sel.start + sel.count > inCh) throw new Error(`input channels ${sel.start}..${sel.start + sel.count - 1} of kernels with ${inCh}`);
  const plane = kh * kw;
  const data = new Float32Array(out * sel.count * plane);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < sel.count; c++) {
      const from = (o * inCh + sel.start + c) * plane;
      data.set(weights.subarray(from, from + plane), (o * sel.count + c) * plane);
    }
  }
  return { count: out, channels: sel.count, h: kh, w: kw, data };
}

/**
 * One image's feature maps on one tower as grey tiles: conv-like maps [C][H][W] (a worker's CNHW output
 * for one image), or an fc layer's C units (H = W = 1), shown as one square tile of ceil(sqrt(C)) units a
 * side, row by row (the cells past C are background).
 */
export function featureTiles(maps: Float32Array, shape: readonly [number, number, number]): Tiles {
  const [C, H, W] = shape;
  if (maps.length !== C * H * W) throw new Error(`${maps.length} values are not maps [${shape.join(', ')}]`);
  if (H === 1 && W === 1) {
    const side = Math.ceil(Math.sqrt(C));
    const data = new Float32Array(side * side).fill(NaN);
    data.set(maps);
    return { count: 1, channels: 1, h: side, w: side, data };
  }
  return { count: C, channels: 1, h: H, w: W, data: Float32Array.from(maps) };
}

/** Smallest and largest finite value over some tiles (0, 0 when there are none). */
export function valueRange(tiles: readonly Tiles[]): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const t of tiles) {
    for (const v of t.data) {
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return Number.isFinite(min) ? { min, max } : { min: 0, max: 0 };
}

export interface GridOptions {
  /** Tiles a row (default: 16, or fewer when there are fewer tiles). */
  readonly columns?: number;
  /** Magnification of every tile (default: the smallest integer making a tile at least `minTile` pixels). */
  readonly zoom?: number;
  readonly minTile?: number;
  /** Background pixels between tiles and around the grid (default 1). */
  readonly gap?: number;
  readonly background?: readonly [number, number, number];
}

export interface TileScale {
  /**
   * 'each': every tile on its own; a number: this |value| (signed) or this maximum (unsigned) is full
   * intensity for every tile.
   */
  readonly range: 'each' | number;
  /** Signed values: 0 is mid grey (kernels, maps with negative values); unsigned: 0 is black. */
  readonly signed: boolean;
}

const DEFAULT_BACKGROUND = [24, 24, 24] as const;

/** Pixel size of a grid of `count` tiles of h x w (see tileGrid's options). */
export function gridSize(count: number, h: number, w: number, o: GridOptions = {}): { width: number; height: number; columns: number; rows: number; zoom: number } {
  const columns = Math.max(1, Math.min(o.columns ?? 16, count));
  const rows = Math.max(1, Math.ceil(count / columns));
  const zoom = o.zoom ?? Math.max(1, Math.ceil((o.minTile ?? 24) / Math.max(h, w)));
  const gap = o.gap ?? 1;
  return { width: columns * w * zoom + (columns + 1) * gap, height: rows * h * zoom + (rows + 1) * gap, columns, rows, zoom };
}

/** The tiles as a grid, each tile scaled as `scale` says. */
export function tileGrid(tiles: Tiles, scale: TileScale, o: GridOptions = {}): Raster {
  const { width, height, columns, zoom } = gridSize(tiles.count, tiles.h, tiles.w, o);
  const gap = o.gap ?? 1;
  const bg = o.background ?? DEFAULT_BACKGROUND;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(bg, i * 3);
  const { h, w, channels } = tiles;
  const plane = h * w;
  const tileSize = channels * plane;
  for (let k = 0; k < tiles.count; k++) {
    const t = tiles.data.subarray(k * tileSize, (k + 1) * tileSize);
    let range = scale.range;
    if (range === 'each') {
      const r = valueRange([{ ...tiles, count: 1, data: t }]);
      range = scale.signed ? Math.max(Math.abs(r.min), Math.abs(r.max)) : r.max;
    }
    const byte = (v: number): number => {
      if (!(range as number > 0)) return scale.signed ? 128 : 0;
      const x = scale.signed ? 127.5 + (127.5 * v) / (range as number) : (255 * v) / (range as number);
      return Math.max(0, Math.min(255, Math.round(x)));
    };
    const x0 = gap + (k % columns) * (w * zoom + gap);
    const y0 = gap + Math.floor(k / columns) * (h * zoom + gap);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v0 = t[y * w + x]!;
        if (Number.isNaN(v0)) continue;
        const rgb = channels === 3 ? [byte(v0), byte(t[plane + y * w + x]!), byte(t[2 * plane + y * w + x]!)] : [byte(v0), byte(v0), byte(v0)];
        for (let dy = 0; dy < zoom; dy++) {
          const row = (y0 + y * zoom + dy) * width;
          for (let dx = 0; dx < zoom; dx++) data.set(rgb, (row + x0 + x * zoom + dx) * 3);
        }
      }
    }
  }
  return { width, height, data };
}

/** Rasters one above the other (left-aligned), a `band`-pixel light line between them. */
export function stackRasters(rasters: readonly Raster[], band = 3, o: { background?: readonly [number, number, number]; bandColour?: readonly [number, number, number] } = {}): Raster {
  const width = Math.max(...rasters.map((r) => r.width));
  const height = rasters.reduce((s, r) => s + r.height, 0) + band * Math.max(0, rasters.length - 1);
  const data = new Uint8Array(width * height * 3);
  const bg = o.background ?? DEFAULT_BACKGROUND;
  for (let i = 0; i < width * height; i++) data.set(bg, i * 3);
  const bandColour = o.bandColour ?? [200, 200, 200];
  let y = 0;
  rasters.forEach((r, i) => {
    if (i > 0) {
      for (let b = 0; b < band; b++) for (let x = 0; x < width; x++) data.set(bandColour, ((y + b) * width + x) * 3);
      y += band;
    }
    for (let ry = 0; ry < r.height; ry++) data.set(r.data.subarray(ry * r.width * 3, (ry + 1) * r.width * 3), (y + ry) * width * 3);
    y += r.height;
  });
  return { width, height, data };
}

/** A layer's kernels on both towers, one picture: tower 0's grid above tower 1's (each kernel scaled on its own). */
export function kernelGrid(towers: readonly [Tiles, Tiles], o: GridOptions = {}): Raster {
  const columns = o.columns ?? Math.min(16, Math.max(towers[0].count, towers[1].count));
  return stackRasters(towers.map((t) => tileGrid(t, { range: 'each', signed: true }, { ...o, columns })));
}

/**
 * One image's feature maps on both towers (null: a tower that does not compute the layer, e.g. tower 1 at
 * fc8), one picture: tower 0's above tower 1's; `scale` 'shared' (default) uses one scale for all maps of both.
 */
export function featureMapGrid(towers: readonly [Tiles | null, Tiles | null], o: GridOptions & { scale?: 'shared' | 'each' } = {}): Raster {
  const present = towers.filter((t): t is Tiles => t !== null);
  if (present.length === 0) throw new Error('no feature maps to draw');
  const r = valueRange(present);
  const signed = r.min < 0;
  const range = (o.scale ?? 'shared') === 'each' ? 'each' : signed ? Math.max(-r.min, r.max) : r.max;
  const columns = o.columns ?? Math.min(16, Math.max(...present.map((t) => t.count)));
  const minTile = o.minTile ?? 32;
  return stackRasters(present.map((t) => tileGrid(t, { range, signed }, { ...o, columns, minTile })));
}
