/**
 * Images travel as uint8 (a quarter of the bytes of float32); each worker
 * turns them into the float32 the kernels read, the same way on both towers:
 *
 *   x = (u8 - 128) / 64      (so 0..255 maps to -2 .. 1.984)
 *
 * Layout is unchanged: CNHW [channel][image][y][x]. A data loader that wants
 * the paper's mean subtraction folds it into the uint8 it produces (or a
 * later protocol version sends the mean); this keeps the wire format simple.
 */
export const IMAGE_OFFSET = 128;
export const IMAGE_SCALE = 64;

export function normaliseImages(u8: Uint8Array): Float32Array {
  const out = new Float32Array(u8.length);
  for (let i = 0; i < u8.length; i++) out[i] = (u8[i]! - IMAGE_OFFSET) / IMAGE_SCALE;
  return out;
}
