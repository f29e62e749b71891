/**
 * An image file as the network sees it in evaluation: decoded as the data
 * pipeline decodes image folders (core/data decodeImage: sRGB, the shorter
 * side resized to the preset's stored size and the centre square cut out),
 * then the centre view of the preset's input size (core/data viewsU8, the
 * evaluation's centre crop): uint8 CNHW [3][1][S][S], what a worker is sent.
 */
import fs from 'node:fs';
import type { ModelSpec } from '@alexnet-mp/core';
import { augmentFor, decodeImage, viewsU8 } from '@alexnet-mp/core/data';
import { UserError } from '../cli/errors.js';

export async function imageInput(file: string, spec: ModelSpec): Promise<Uint8Array> {
  if (!fs.existsSync(file)) throw new UserError(`--image ${file}: no such file`);
  if (spec.inputChannels !== 3) throw new UserError(`preset ${spec.name} takes ${spec.inputChannels} input channels; image files are RGB`);
  const { storedSize } = augmentFor(spec.inputSize);
  let img: Uint8Array;
  try {
    img = await decodeImage(file, storedSize);
  } catch (e) {
    throw new UserError(`--image ${file}: not an image this build can read (${(e as Error).message})`);
  }
  return viewsU8(img, storedSize, spec.inputSize, 'centre');
}
