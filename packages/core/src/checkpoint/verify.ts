/**
 * Checking a checkpoint or model file without using it (`alexnet verify`): the checks every reader makes
 * (structure, checksums, values: checkpoint.ts's readVerified) and those of its kind (the preset's tensors
 * and shapes, the run state or the model's metadata).
 */
import { getPreset, presetNames } from '../model/presets.js';
import { CHECKPOINT_FORMAT, CheckpointError, decodeCheckpoint, readVerified } from './checkpoint.js';
import { checkedHeaderMetadata } from './safetensors.js';
import { decodeModel, MODEL_FORMAT, optionalInt } from './model-file.js';
import { fileError, readRegularFile } from '../fs-errors.js';

export interface FileVerdict {
  readonly file: string;
  /** The step it holds (a checkpoint's run state, a model's metadata), when it says. */
  readonly step?: number;
  readonly kind?: 'checkpoint' | 'model';
  readonly preset?: string;
  /** ok: every check passed; unverified: sound but without checksums (an older file); failed: `problem` says what. */
  readonly state: 'ok' | 'unverified' | 'failed';
  readonly problem?: string;
}

/** Verifies one file; never throws for a bad file (the verdict says what is wrong). */
export function verifyFile(file: string): FileVerdict {
  let buf: Buffer;
  try {
    buf = readRegularFile(file);
  } catch (e) {
    return { file, state: 'failed', problem: fileError('read', file, e).message };
  }
  try {
    const { metadata } = readVerified(buf, file);
    const preset = metadata.preset ?? '';
    if (metadata.format === CHECKPOINT_FORMAT) {
      if (!(presetNames as readonly string[]).includes(preset)) throw new CheckpointError(`${file} is a checkpoint of preset "${preset}", which this build does not have (${presetNames.join(', ')})`);
      const { state, checksums } = decodeCheckpoint(getPreset(preset), buf, file);
      return { file, kind: 'checkpoint', preset, step: state.step, state: checksums === 'verified' ? 'ok' : 'unverified' };
    }
    if (metadata.format === MODEL_FORMAT) {
      const { info, checksums } = decodeModel(buf, file);
      return { file, kind: 'model', preset, step: info.step, state: checksums === 'verified' ? 'ok' : 'unverified' };
    }
    throw new CheckpointError(`${file} is neither an alexnet-mp checkpoint nor a model file (its metadata says format ${JSON.stringify(metadata.format ?? null)})`);
  } catch (e) {
    if (e instanceof CheckpointError) return { file, ...whatTheHeaderSays(buf), state: 'failed', problem: e.message };
    throw e;
  }
}

/** A damaged file's kind, preset and step as its header says them, when the header reads and matches its checksum (a tensor's bytes damaged). */
function whatTheHeaderSays(buf: Buffer): Pick<FileVerdict, 'kind' | 'preset' | 'step'> {
  const m = checkedHeaderMetadata(buf);
  const kind = m?.format === CHECKPOINT_FORMAT ? 'checkpoint' : m?.format === MODEL_FORMAT ? 'model' : undefined;
  if (!m || kind === undefined) return {};
  let step: number | undefined;
  if (kind === 'model') step = optionalInt(m.step);
  else {
    try {
      const s = (JSON.parse(m.state ?? '') as { step?: unknown }).step;
      step = Number.isSafeInteger(s) && (s as number) >= 0 ? (s as number) : undefined;
    } catch {
      step = undefined;
    }
  }
  return { kind, ...(m.preset ? { preset: m.preset } : {}), ...(step !== undefined ? { step } : {}) };
}
