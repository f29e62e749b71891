/**
 * Images travel as uint8 (a quarter of the bytes of float32); each worker
 * turns them into the float32 the kernels read, the same way on both towers:
 *
 *   x = (u8 - mean_c) / inputScale
 *
 * mean_c is the training set's per-channel mean, sent by the coordinator in
 * ConfigureRequest.input_mean (128 for each channel when it sends none, e.g.
 * synthetic data); inputScale is the preset's (1 for paper: the paper
 * subtracts the mean and nothing else; 64 for cifar and tiny).
 *
 * Layout is unchanged: CNHW [channel][image][y][x].
 */
export const DEFAULT_INPUT_MEAN: readonly [number, number, number] = [128, 128, 128];

export interface InputNormalisation {
  /** Per-channel mean in pixel levels, one value per input channel. */
  readonly mean: readonly number[];
  readonly scale: number;
}

export function normaliseImages(u8: Uint8Array, norm: InputNormalisation): Float32Array {
  const channels = norm.mean.length;
  const plane = u8.length / channels;
  const out = new Float32Array(u8.length);
  for (let c = 0; c < channels; c++) {
    const m = norm.mean[c]!;
    const inv = 1 / norm.scale;
    for (let i = c * plane, end = (c + 1) * plane; i < end; i++) out[i] = (u8[i]! - m) * inv;
  }
  return out;
}

/** The mean the coordinator sent, or the default; a wrong count or a value outside 0..255 is a message. */
export function inputMeanFrom(sent: readonly number[] | undefined, channels: number): readonly number[] | string {
  if (!sent || sent.length === 0) return DEFAULT_INPUT_MEAN.slice(0, channels);
  if (sent.length !== channels) return `input_mean has ${sent.length} values, the model has ${channels} input channels`;
  for (const v of sent) if (!Number.isFinite(v) || v < 0 || v > 255) return `input_mean value ${v} is outside 0..255`;
  return sent;
}

/** The normalisation of a preset, with the default mean unless one is given (tests and benchmarks on synthetic data). */
export function inputNormalisation(spec: { readonly inputScale: number }, mean: readonly number[] = DEFAULT_INPUT_MEAN): InputNormalisation {
  return { mean, scale: spec.inputScale };
}
