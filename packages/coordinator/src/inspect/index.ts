/**
 * Inspecting a run: each tower's kernels and feature maps as pictures, the
 * colour score of its first-layer kernels, test images with top-5 guesses.
 * Used by `alexnet inspect` and the dashboard; see docs/inspect.md.
 *
 * - colour.ts: colourScore (the colour-specificity of RGB kernels, defined there);
 * - grid.ts: kernelTiles / featureTiles (float arrays to tiles), kernelGrid / featureMapGrid
 *   (both towers' tiles as one RGB raster, tower 0 above tower 1), tileGrid for one tower;
 * - png.ts: encodePng / writePng, inputRaster (a uint8 network input as a raster);
 * - predictions.ts: predictionsPng (images with their top-5), softmaxColumn, topK.
 */
export { colourScore, kernelColourShare, type ColourScore } from './colour.js';
export {
  defaultSelection,
  featureMapGrid,
  featureTiles,
  gridSize,
  kernelGrid,
  kernelTiles,
  parseInputSelection,
  stackRasters,
  tileGrid,
  valueRange,
  type GridOptions,
  type InputSelection,
  type Raster,
  type TileScale,
  type Tiles,
} from './grid.js';
export { encodePng, inputRaster, writePng } from './png.js';
export { predictionsPng, predictionsSize, softmaxColumn, topK, type Guess, type PredictedImage } from './predictions.js';
