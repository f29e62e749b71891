/**
 * An image file as the network sees it in evaluation: decoded as the data
 * pipeline decodes image folders (core/data decodeImage: sRGB, the shorter
 * side resized to the preset's stored size and the centre square cut out),
 * then the evaluation's views of the preset's input size (core/data viewsU8:
 * the centre crop, or the paper's ten patches): uint8 CNHW [3][views][S][S],
 * what a worker is sent.
 */
import fs from 'node:fs';
import type { ModelSpec } from '@alexnet-mp/core';
import { augmentFor, decodeImage, viewsU8, type ViewMode } from '@alexnet-mp/core/data';
import { UserError } from '../cli/errors.js';

/** `option` names the file in messages (`--image cat.jpg: ...`); without it, the file alone. */
export async function imageInput(file: string, spec: ModelSpec, views: ViewMode = 'centre', option: string | null = '--image'): Promise<Uint8Array> {
  const named = option ? `${option} ${file}` : file;
  if (!fs.existsSync(file)) throw new UserError(`${named}: no such file`);
  const st = fs.statSync(file);
  if (st.isDirectory()) throw new UserError(`${named} is a folder, not an image file`);
  // (a pipe or a device has no size to go by: the decoder says what it reads)
  if (st.isFile() && st.size === 0) throw new UserError(`${named}: the file is empty (0 bytes), not an image`);
  if (spec.inputChannels !== 3) throw new UserError(`preset ${spec.name} takes ${spec.inputChannels} input channels; image files are RGB`);
  const { storedSize } = augmentFor(spec.inputSize);
  let img: Uint8Array;
  try {
    img = await decodeImage(file, storedSize);
  } catch (e) {
    // sharp's first line, without a dangling colon ("Input file has corrupt header: " with nothing after)
    const why = (e as Error).message.split('\n')[0]?.trim().replace(/:$/, '').trim() || 'the decoder gave no reason';
    // sharp's guard against decompression bombs: 0x3FFF squared, 268,402,689 pixels (16,383 x 16,383), at most
    if (/exceeds pixel limit/i.test(why)) throw new UserError(`${named}: too large to read (over 268 million pixels, 16,383 x 16,383; scale it down first)`);
    throw new UserError(`${named}: not an image this build can read (${why})`);
  }
  return viewsU8(img, storedSize, spec.inputSize, views);
}
