/**
 * A training checkpoint: both towers' weights and momentum (PyTorch names,
 * see pytorch-names.ts) in one safetensors file, with the run state (step,
 * seed, preset, model hash, and whatever the data pipeline needs to continue
 * in the same order) in its metadata.
 *
 * Files are written atomically: a temporary file in the same folder, fsync,
 * rename, fsync of the folder. A crash leaves either the previous checkpoint
 * or the new one, never half of one; the last `keep` up to the step written
 * are kept. Every file carries CRC-32C checksums of its header and tensors
 * (safetensors.ts), checked with its values by every reader (readVerified).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelSpec } from '../model/spec.js';
import type { TowerParams } from '../model/params.js';
import { towerParamLayers } from '../model/params.js';
import { decodeSafetensors, encodeSafetensors, HEADER_START_BYTES, headerLength, parseHeader, rawMetadata, SafetensorsError, unsoundValue, type DecodedSafetensors, type NamedTensor } from './safetensors.js';
import { torchPlan } from './pytorch-names.js';
import { modelHash } from '../model/hash.js';
import { checkRegularFile, fileError, makeDir } from '../fs-errors.js';

/**
 * A checkpoint or model file that cannot be used, said in one line. `damaged`: the file itself is bad (empty,
 * truncated, unparsable, a checksum that does not match, non-finite or absurd values): another checkpoint of
 * the run may do instead. Otherwise it is sound but not for this use (another preset, a model file given as
 * a checkpoint...).
 */
export class CheckpointError extends Error {
  constructor(message: string, readonly damaged = false) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/**
 * Reads a safetensors checkpoint or model file's bytes, verifying its checksums and its values: a damaged
 * CheckpointError naming `where` and what is wrong when it is empty, truncated, does not parse, does not match
 * a checksum, or holds a non-finite or absurd value.
 */
export function readVerified(buf: Buffer, where: string, kind = 'checkpoint'): DecodedSafetensors {
  const d = asCheckpointError(() => decodeSafetensors(buf), where, kind);
  const bad = unsoundValue(d.tensors.values());
  if (bad) throw new CheckpointError(`${where} is damaged: ${bad}, which no trained model holds`, true);
  return d;
}

/** `read()`, a SafetensorsError from it said as a damaged CheckpointError naming `where` (or "is not a KIND"). */
function asCheckpointError<T>(read: () => T, where: string, kind: string): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.notSafetensors ? `${where} is not a ${kind} (not safetensors: ${e.message})` : e.unsupported ? `${where} cannot be read: ${e.message}` : `${where} is damaged: ${e.message}`, true);
    throw e;
  }
}

/**
 * A checkpoint or model file's metadata as written (checksum entries included), from its header alone (its
 * tensors are not read, nor its checksums checked: readVerified does that); a damaged CheckpointError, in
 * readVerified's words, when the header cannot be read.
 */
export function readMetadataOnly(file: string, kind = 'checkpoint'): Record<string, string> {
  let fd: number;
  try {
    // a pipe's open would wait for a writer
    checkRegularFile(file);
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new CheckpointError(fileError('read', file, e).message, true);
  }
  // a folder opens, and fails at the first read
  if (fs.fstatSync(fd).isDirectory()) {
    fs.closeSync(fd);
    throw new CheckpointError(fileError('read', file, Object.assign(new Error('EISDIR'), { code: 'EISDIR' })).message, true);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const start = Buffer.alloc(HEADER_START_BYTES);
    fs.readSync(fd, start, 0, HEADER_START_BYTES, 0);
    return asCheckpointError(() => {
      const n = headerLength(start, size);
      const head = Buffer.alloc(n);
      fs.readSync(fd, head, 0, n, 8);
      return rawMetadata(parseHeader(head));
    }, file, kind);
  } finally {
    fs.closeSync(fd);
  }
}

const saidUnverified = new Set<string>();

/** For a file without checksums (written before they were added): a line saying it is read unverified, once per file in a process; null otherwise. */
export function unverifiedNote(file: string, checksums: DecodedSafetensors['checksums']): string | null {
  if (checksums !== 'absent' || saidUnverified.has(file)) return null;
  saidUnverified.add(file);
  return `${file} has no checksums (written by an older version or another program): read without verifying it`;
}

/**
 * Both towers' parameters from tensors under their PyTorch names, each checked against the preset's shape;
 * momentum from the momentum.* tensors, or zero without them.
 */
export function towersFromTensors(spec: ModelSpec, tensors: ReadonlyMap<string, NamedTensor>, where: string, withMomentum: boolean): [TowerParams, TowerParams] {
  const params: [TowerParams, TowerParams] = [new Map(), new Map()];
  const take = (name: string, shape: readonly number[]): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new CheckpointError(`${where} has no tensor ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new CheckpointError(`${where}: tensor ${name} is [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    return t.data;
  };
  for (const plan of torchPlan(spec)) {
    const w = take(`${plan.module}.weight`, plan.weightShape);
    const b = take(`${plan.module}.bias`, plan.biasShape);
    const vw = withMomentum ? take(`momentum.${plan.module}.weight`, plan.weightShape) : null;
    const vb = withMomentum ? take(`momentum.${plan.module}.bias`, plan.biasShape) : null;
    const k = plan.towers.length;
    plan.towers.forEach((t, i) => {
      const slice = (a: Float32Array) => a.slice((i * a.length) / k, ((i + 1) * a.length) / k);
      const pw = slice(w);
      const pb = slice(b);
      params[t].set(plan.layer, { w: pw, b: pb, vw: vw ? slice(vw) : new Float32Array(pw.length), vb: vb ? slice(vb) : new Float32Array(pb.length) });
    });
  }
  // every layer of each tower, in model order
  for (const t of [0, 1] as const) {
    const ordered: TowerParams = new Map();
    for (const l of towerParamLayers(spec, t)) ordered.set(l.name, params[t].get(l.name)!);
    params[t] = ordered;
  }
  return params;
}

export interface RunState {
  /** Steps done: the next step to run. */
  readonly step: number;
  readonly seed: number;
  readonly preset: string;
  /** Anything else the run needs to continue exactly (data order, epoch, schedule): JSON-serialisable. */
  readonly extra?: Record<string, unknown>;
}

/** The arrays one after the other, in one new array. */
export function concatFloats(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Both towers' weights and biases under their PyTorch names (no momentum): what a trained model file holds. */
export function weightTensors(spec: ModelSpec, params: [TowerParams, TowerParams]): NamedTensor[] {
  const out: NamedTensor[] = [];
  for (const plan of torchPlan(spec)) {
    const parts = plan.towers.map((t) => params[t].get(plan.layer)!);
    out.push({ name: `${plan.module}.weight`, shape: plan.weightShape, data: concatFloats(parts.map((p) => p.w)) });
    out.push({ name: `${plan.module}.bias`, shape: plan.biasShape, data: concatFloats(parts.map((p) => p.b)) });
  }
  return out;
}

export function checkpointTensors(spec: ModelSpec, params: [TowerParams, TowerParams]): NamedTensor[] {
  const out = weightTensors(spec, params);
  for (const plan of torchPlan(spec)) {
    const parts = plan.towers.map((t) => params[t].get(plan.layer)!);
    out.push({ name: `momentum.${plan.module}.weight`, shape: plan.weightShape, data: concatFloats(parts.map((p) => p.vw)) });
    out.push({ name: `momentum.${plan.module}.bias`, shape: plan.biasShape, data: concatFloats(parts.map((p) => p.vb)) });
  }
  return out;
}

export function encodeCheckpoint(spec: ModelSpec, params: [TowerParams, TowerParams], state: RunState): Buffer {
  return encodeSafetensors(checkpointTensors(spec, params), {
    format: CHECKPOINT_FORMAT,
    preset: state.preset,
    model_hash: modelHash(spec),
    state: JSON.stringify(state),
  });
}

export const CHECKPOINT_FORMAT = 'alexnet-mp checkpoint v1';

/**
 * Splits a checkpoint back into both towers' parameters and momentum, verifying it (readVerified) and checking
 * that it belongs to this model; `checksums` says whether it had any (unverifiedNote).
 */
export function decodeCheckpoint(spec: ModelSpec, buf: Buffer, where = 'checkpoint'): { params: [TowerParams, TowerParams]; state: RunState; checksums: DecodedSafetensors['checksums'] } {
  const { tensors, metadata, checksums } = readVerified(buf, where);
  if (metadata.model_hash !== modelHash(spec)) {
    throw new CheckpointError(`${where} was made for preset "${metadata.preset ?? '?'}" (model hash ${String(metadata.model_hash).slice(0, 12)}), not for "${spec.name}" (${modelHash(spec).slice(0, 12)})`);
  }
  const params = towersFromTensors(spec, tensors, where, true);
  let state: RunState;
  try {
    state = JSON.parse(metadata.state ?? '') as RunState;
  } catch {
    throw new CheckpointError(`${where} has no readable run state`, true);
  }
  if (state === null || typeof state !== 'object' || !Number.isSafeInteger(state.step) || state.step < 0) throw new CheckpointError(`${where}: its run state has no step`, true);
  return { params, state, checksums };
}

const NAME = /^step-(\d{9})\.safetensors$/;

/** The temporary file a writer of `file` fills before renaming it into place: .NAME.PID.tmp beside it (what the stray-file cleanup below recognises). */
export function tempBeside(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
}

/**
 * Replaces `file` with `data` atomically: a temporary file beside it (.NAME.PID.tmp), fsync, rename. Readers
 * (and a crash) see the old file or the new one, never a part; on failure the temporary file is removed and
 * the error thrown.
 */
export function replaceFile(file: string, data: string | Uint8Array): void {
  const tmp = tempBeside(file);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** The step of a checkpoint file by its name (step-NNNNNNNNN.safetensors); null for other names. */
export function stepOfFile(file: string): number | null {
  const m = NAME.exec(path.basename(file));
  return m ? Number(m[1]) : null;
}

/**
 * Writes `bytes` as DIR/step-NNNNNNNNN.safetensors atomically and keeps the last `keep` checkpoints of the
 * steps up to this one: a checkpoint of a later step (one kept aside, or another run's) is never pruned for
 * this one, nor is the file just written.
 */
export function writeCheckpointFile(dir: string, step: number, bytes: Buffer, keep = 3): string {
  makeDir(dir, 'the checkpoint folder');
  const final = path.join(dir, `step-${String(step).padStart(9, '0')}.safetensors`);
  try {
    replaceFile(final, bytes);
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (e) {
    throw new CheckpointError(`${fileError('write checkpoint', final, e).message} (the previous checkpoint is kept)`);
  }
  const earlier = listCheckpoints(dir).filter((f) => stepOfFile(f)! < step);
  for (const old of earlier.slice(0, Math.max(0, earlier.length - (keep - 1)))) fs.rmSync(old, { force: true });
  return final;
}

/** Temporary files that writers leave behind when killed mid-write (replaceFile's .NAME.PID.tmp) in DIR: removed; returns their names. */
export function removeStrayTemporaries(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const stray = names.filter((f) => /^\..+\.\d+\.tmp$/.test(f));
  for (const f of stray) fs.rmSync(path.join(dir, f), { force: true });
  return stray;
}

/** Checkpoint files in DIR, oldest first (none when DIR is not there, or is not a folder). */
export function listCheckpoints(dir: string): string[] {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir, { throwIfNoEntry: false });
  } catch {
    return []; // a part of the path is a file (ENOTDIR)
  }
  if (!st?.isDirectory()) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => NAME.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

export function latestCheckpoint(dir: string): string | null {
  const all = listCheckpoints(dir);
  return all.length > 0 ? all[all.length - 1]! : null;
}
