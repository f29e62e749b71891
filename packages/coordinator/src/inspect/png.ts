/**
 * Rasters to PNG files, and uint8 network inputs to rasters, with sharp
 * (libvips; already the data pipeline's decoder).
 */
import path from 'node:path';
import sharp from 'sharp';
import { fileError, makeDir } from '@alexnet-mp/core';
import type { Raster } from './grid.js';
import { writeWhole } from '../temp-files.js';

/** PNG bytes of an RGB raster. */
export function encodePng(r: Raster): Promise<Buffer> {
  return sharp(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength), { raw: { width: r.width, height: r.height, channels: 3 } })
    .png()
    .toBuffer();
}

/** Writes a raster, or PNG bytes, as a PNG file (the folder is created); returns the path. */
export async function writePng(file: string, r: Raster | Buffer): Promise<string> {
  return writeOutput(file, Buffer.isBuffer(r) ? r : await encodePng(r));
}

/** Writes a tool's output file, making its folder; a FileError (one line for the user) naming the file and why it cannot be written. */
export function writeOutput(file: string, bytes: Buffer): string {
  makeDir(path.dirname(path.resolve(file)), `the folder of ${file}`);
  try {
    writeWhole(file, bytes);
  } catch (e) {
    throw fileError('write', file, e);
  }
  return file;
}

/**
 * Image j of a uint8 CNHW batch [3][n][size][size] (what the workers are sent) as a raster, each pixel
 * magnified `zoom` times (nearest neighbour).
 */
export function inputRaster(images: Uint8Array, n: number, j: number, size: number, zoom = 1): Raster {
  const plane = size * size;
  if (images.length !== 3 * n * plane) throw new Error(`${images.length} bytes are not [3][${n}][${size}][${size}]`);
  const width = size * zoom;
  const data = new Uint8Array(width * width * 3);
  for (let y = 0; y < width; y++) {
    const sy = Math.floor(y / zoom);
    for (let x = 0; x < width; x++) {
      const s = j * plane + sy * size + Math.floor(x / zoom);
      const o = (y * width + x) * 3;
      data[o] = images[s]!;
      data[o + 1] = images[n * plane + s]!;
      data[o + 2] = images[2 * n * plane + s]!;
    }
  }
  return { width, height: width, data };
}
