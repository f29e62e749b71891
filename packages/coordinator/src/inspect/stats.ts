/**
 * Numbers about one image's feature maps of a layer, per tower: what a picture of them leaves to the eye.
 * A map that is zero everywhere (after a ReLU: a unit that does not fire for this image) is counted; a
 * layer all of whose maps are zero is dead for the image, and the network above it sees only biases.
 */

export interface MapStats {
  /** Maps (channels) and values per map. */
  readonly maps: number;
  readonly perMap: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly std: number;
  /** Share of the values that are exactly 0. */
  readonly zeros: number;
  /** Maps whose every value is 0. */
  readonly zeroMaps: number;
}

/** The statistics of `x`, `maps` maps of `perMap` values each, map after map (float64 sums). */
export function mapStats(x: Float32Array, maps: number, perMap: number): MapStats {
  if (x.length !== maps * perMap) throw new Error(`mapStats: ${x.length} values are not ${maps} maps of ${perMap}`);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let zeros = 0;
  let zeroMaps = 0;
  for (let c = 0; c < maps; c++) {
    let mapZeros = 0;
    for (let i = c * perMap; i < (c + 1) * perMap; i++) {
      const v = x[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      if (v === 0) mapZeros++;
    }
    zeros += mapZeros;
    if (mapZeros === perMap) zeroMaps++;
  }
  const n = x.length;
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (x[i]! - mean) ** 2;
  return { maps, perMap, min, max, mean, std: Math.sqrt(sq / n), zeros: zeros / n, zeroMaps };
}

const num = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(2) : String(Number(v.toPrecision(3))));

/** "min 0, mean 0.213, std 0.48, max 5.91; 62.1% zeros; 3 of 128 maps all zero". */
export function describeStats(s: MapStats): string {
  const dead = s.zeroMaps === s.maps ? `every one of its ${s.maps} ${s.perMap > 1 ? 'maps' : 'units'} zero: nothing passes this layer for this image` : `${s.zeroMaps} of ${s.maps} ${s.perMap > 1 ? 'maps' : 'units'} all zero`;
  return `min ${num(s.min)}, mean ${num(s.mean)}, std ${num(s.std)}, max ${num(s.max)}; ${(100 * s.zeros).toFixed(1)}% zeros; ${dead}`;
}
