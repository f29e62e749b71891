/**
 * A small fixed data set made by the tests: four classes of 16x16 images
 * (horizontal stripes, vertical stripes, a red blob, a blue blob) with noise.
 * Returned as batches in layout CNHW [3][N][H][W].
 */
import { Rng } from '../src/random.js';

export function syntheticBatch(n: number, size: number, seed: number, classes = 4): { images: Float32Array; labels: Float32Array } {
  const r = new Rng(seed);
  const images = new Float32Array(3 * n * size * size);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = r.int(classes);
    labels[i] = c;
    const phase = r.int(4);
    const cx = 3 + r.int(size - 6);
    const cy = 3 + r.int(size - 6);
    for (let ch = 0; ch < 3; ch++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          let v = 0;
          if (c === 0) v = (y + phase) % 4 < 2 ? 1 : -1;
          else if (c === 1) v = (x + phase) % 4 < 2 ? 1 : -1;
          else {
            const inBlob = (x - cx) ** 2 + (y - cy) ** 2 <= 6;
            const colour = c === 2 ? 0 : 2;
            v = inBlob ? (ch === colour ? 1.5 : -0.5) : 0;
          }
          images[((ch * n + i) * size + y) * size + x] = v + 0.3 * r.normal();
        }
      }
    }
  }
  return { images, labels };
}
