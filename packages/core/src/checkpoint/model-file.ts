/**
 * A trained model file (`alexnet export`): both towers' weights and biases
 * under the checkpoint's PyTorch names and layout (pytorch-names.ts), without
 * momentum or run state, and in its metadata what it takes to use it alone:
 *
 *   format       "alexnet-mp model v1"
 *   preset       the preset's name ("cifar")
 *   model_hash   sha256 of the preset's definition (model/hash.ts); a file of another definition is refused
 *   classes      JSON array: the class names in output order (one per output)
 *   input_mean   JSON array: the per-channel mean (pixel levels 0..255, RGB) subtracted from the input
 *   input_scale  the input is (pixel - input_mean[c]) / input_scale
 *   image_size   an image's shorter side is resized to this and its centre square cut out (as the
 *                training images were decoded) ...
 *   input_size   ... then the centre input_size x input_size crop is the network's input
 *   run_id, run, step, seed, data   the run and checkpoint step it came from, and that run's data
 *   exported     when the file was made (ISO 8601)
 *
 * All metadata values are strings (safetensors keeps a string-to-string map).
 */
import type { ModelSpec } from '../model/spec.js';
import type { TowerParams } from '../model/params.js';
import { getPreset, presetNames } from '../model/presets.js';
import { modelHash } from '../model/hash.js';
import { encodeSafetensors, type DecodedSafetensors } from './safetensors.js';
import { CHECKPOINT_FORMAT, CheckpointError, readVerified, towersFromTensors, weightTensors } from './checkpoint.js';
import { augmentFor } from '../data/augment.js';

export const MODEL_FORMAT = 'alexnet-mp model v1';

export interface ModelInfo {
  readonly preset: string;
  readonly modelHash: string;
  /** One name per output, in output order. */
  readonly classes: readonly string[];
  /** Per-channel mean in pixel levels (RGB). */
  readonly inputMean: readonly number[];
  readonly inputScale: number;
  readonly inputSize: number;
  /** The side images are resized to (shorter side) and centre-cropped to before the input crop. */
  readonly imageSize: number;
  readonly runId?: string;
  /** The run directory as it was given to `alexnet export`. */
  readonly run?: string;
  readonly step?: number;
  readonly seed?: number;
  /** The run's data, as its checkpoint describes it. */
  readonly data?: string;
  /** ISO 8601. */
  readonly exported?: string;
}

/** What a model file says besides its tensors: everything but preset, hash, input scale and size, which the spec gives. */
export type ModelFileInfo = Omit<ModelInfo, 'preset' | 'modelHash' | 'inputScale' | 'inputSize' | 'imageSize'>;

/** Names `class N` for outputs past the given names, so that every output has one. */
export function classNamesFor(spec: ModelSpec, names: readonly string[] | null | undefined): string[] {
  return Array.from({ length: spec.classes }, (_, c) => names?.[c] ?? `class ${c}`);
}

export function encodeModel(spec: ModelSpec, params: [TowerParams, TowerParams], info: ModelFileInfo): Buffer {
  if (info.inputMean.length !== spec.inputChannels) throw new CheckpointError(`input mean has ${info.inputMean.length} values, preset ${spec.name} has ${spec.inputChannels} input channels`);
  const meta: Record<string, string> = {
    format: MODEL_FORMAT,
    preset: spec.name,
    model_hash: modelHash(spec),
    classes: JSON.stringify(classNamesFor(spec, info.classes)),
    input_mean: JSON.stringify(info.inputMean),
    input_scale: String(spec.inputScale),
    image_size: String(augmentFor(spec.inputSize).storedSize),
    input_size: String(spec.inputSize),
  };
  if (info.runId !== undefined) meta.run_id = info.runId;
  if (info.run !== undefined) meta.run = info.run;
  if (info.step !== undefined) meta.step = String(info.step);
  if (info.seed !== undefined) meta.seed = String(info.seed);
  if (info.data !== undefined) meta.data = info.data;
  meta.exported = info.exported ?? new Date().toISOString();
  return encodeSafetensors(weightTensors(spec, params), meta);
}

const parseJson = <T>(text: string | undefined, what: string, where: string): T => {
  try {
    return JSON.parse(text ?? '') as T;
  } catch {
    throw new CheckpointError(`${where} has no readable ${what} in its metadata`);
  }
};

/** A metadata value that is a whole number ("42"), else undefined. */
export const optionalInt = (s: string | undefined): number | undefined => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);

/**
 * Reads a model file: its preset (from the file; `expect`, when given, must be the same), the weights of
 * both towers (momentum zero) and its metadata, verified as checkpoints are (readVerified). A CheckpointError,
 * one line, for a damaged file, a file that is not a model (a training checkpoint included), of an unknown
 * preset, or of another definition of the preset.
 */
export function decodeModel(buf: Buffer, where = 'model', expect?: ModelSpec): { spec: ModelSpec; params: [TowerParams, TowerParams]; info: ModelInfo; checksums: DecodedSafetensors['checksums'] } {
  const { tensors, metadata, checksums } = readVerified(buf, where, 'model file');
  if (metadata.format === CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${where} is a training checkpoint, not a model file: give its run folder with --run, or make a model of it with alexnet export`);
  }
  if (metadata.format !== MODEL_FORMAT) throw new CheckpointError(`${where} is not an alexnet-mp model file (its metadata says format ${JSON.stringify(metadata.format ?? null)}, expected "${MODEL_FORMAT}")`);
  const preset = metadata.preset ?? '';
  if (!(presetNames as readonly string[]).includes(preset)) throw new CheckpointError(`${where} is a model of preset "${preset}", which this build does not have (${presetNames.join(', ')})`);
  const spec = getPreset(preset);
  if (expect && expect.name !== spec.name) throw new CheckpointError(`${where} is a model of preset "${spec.name}", not "${expect.name}"`);
  const hash = modelHash(spec);
  if (metadata.model_hash !== hash) {
    throw new CheckpointError(`${where} was made for another definition of preset "${spec.name}" (model hash ${String(metadata.model_hash ?? '?').slice(0, 12)}, this build's ${hash.slice(0, 12)})`);
  }
  const classes = parseJson<unknown>(metadata.classes, 'class names', where);
  if (!Array.isArray(classes) || classes.length !== spec.classes || !classes.every((c) => typeof c === 'string')) {
    throw new CheckpointError(`${where}: its class names are not ${spec.classes} strings`);
  }
  const inputMean = parseJson<unknown>(metadata.input_mean, 'input mean', where);
  if (!Array.isArray(inputMean) || inputMean.length !== spec.inputChannels || !inputMean.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new CheckpointError(`${where}: its input mean is not ${spec.inputChannels} numbers`);
  }
  const params = towersFromTensors(spec, tensors, where, false);
  const info: ModelInfo = {
    preset: spec.name,
    modelHash: hash,
    classes: classes as string[],
    inputMean: inputMean as number[],
    inputScale: spec.inputScale,
    inputSize: spec.inputSize,
    imageSize: augmentFor(spec.inputSize).storedSize,
    runId: metadata.run_id,
    run: metadata.run,
    step: optionalInt(metadata.step),
    seed: optionalInt(metadata.seed),
    data: metadata.data,
    exported: metadata.exported,
  };
  return { spec, params, info, checksums };
}
