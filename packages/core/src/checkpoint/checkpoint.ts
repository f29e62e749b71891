/**
 * A training checkpoint: both towers' weights and momentum (PyTorch names,
 * see pytorch-names.ts) in one safetensors file, with the run state (step,
 * seed, preset, model hash, and whatever the data pipeline needs to continue
 * in the same order) in its metadata.
 *
 * Files are written atomically: a temporary file in the same folder, fsync,
 * rename, fsync of the folder. A crash leaves either the previous checkpoint
 * or the new one, never half of one; the last `keep` are kept.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelSpec } from '../model/spec.js';
import type { TowerParams } from '../model/params.js';
import { towerParamLayers } from '../model/params.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.js';
import { torchPlan } from './pytorch-names.js';
import { modelHash } from '../model/hash.js';

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export interface RunState {
  /** Steps done: the next step to run. */
  readonly step: number;
  readonly seed: number;
  readonly preset: string;
  /** Anything else the run needs to continue exactly (data order, epoch, schedule): JSON-serialisable. */
  readonly extra?: Record<string, unknown>;
}


function concat(parts: Float32Array[]): Float32Array {
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
    out.push({ name: `${plan.module}.weight`, shape: plan.weightShape, data: concat(parts.map((p) => p.w)) });
    out.push({ name: `${plan.module}.bias`, shape: plan.biasShape, data: concat(parts.map((p) => p.b)) });
  }
  return out;
}

export function checkpointTensors(spec: ModelSpec, params: [TowerParams, TowerParams]): NamedTensor[] {
  const out = weightTensors(spec, params);
  for (const plan of torchPlan(spec)) {
    const parts = plan.towers.map((t) => params[t].get(plan.layer)!);
    out.push({ name: `momentum.${plan.module}.weight`, shape: plan.weightShape, data: concat(parts.map((p) => p.vw)) });
    out.push({ name: `momentum.${plan.module}.bias`, shape: plan.biasShape, data: concat(parts.map((p) => p.vb)) });
  }
  return out;
}

export function encodeCheckpoint(spec: ModelSpec, params: [TowerParams, TowerParams], state: RunState): Buffer {
  return encodeSafetensors(checkpointTensors(spec, params), {
    format: 'alexnet-mp checkpoint v1',
    preset: state.preset,
    model_hash: modelHash(spec),
    state: JSON.stringify(state),
  });
}

/** Splits a checkpoint back into both towers' parameters and momentum, checking that it belongs to this model. */
export function decodeCheckpoint(spec: ModelSpec, buf: Buffer, where = 'checkpoint'): { params: [TowerParams, TowerParams]; state: RunState } {
  const { tensors, metadata } = decodeSafetensors(buf);
  if (metadata.model_hash !== modelHash(spec)) {
    throw new CheckpointError(`${where} was made for preset "${metadata.preset ?? '?'}" (model hash ${String(metadata.model_hash).slice(0, 12)}), not for "${spec.name}" (${modelHash(spec).slice(0, 12)})`);
  }
  const params: [TowerParams, TowerParams] = [new Map(), new Map()];
  const take = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new CheckpointError(`${where} has no tensor ${name}`);
    return t.data;
  };
  for (const plan of torchPlan(spec)) {
    const [w, b, vw, vb] = [`${plan.module}.weight`, `${plan.module}.bias`, `momentum.${plan.module}.weight`, `momentum.${plan.module}.bias`].map(take) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const k = plan.towers.length;
    plan.towers.forEach((t, i) => {
      const slice = (a: Float32Array) => a.slice((i * a.length) / k, ((i + 1) * a.length) / k);
      params[t].set(plan.layer, { w: slice(w), b: slice(b), vw: slice(vw), vb: slice(vb) });
    });
  }
  // every layer of each tower, in model order
  for (const t of [0, 1] as const) {
    const ordered: TowerParams = new Map();
    for (const l of towerParamLayers(spec, t)) ordered.set(l.name, params[t].get(l.name)!);
    params[t] = ordered;
  }
  let state: RunState;
  try {
    state = JSON.parse(metadata.state ?? '') as RunState;
  } catch {
    throw new CheckpointError(`${where} has no readable run state`);
  }
  return { params, state };
}

const NAME = /^step-(\d{9})\.safetensors$/;

/**
 * Replaces `file` with `data` atomically: a temporary file beside it (.NAME.PID.tmp), fsync, rename. Readers
 * (and a crash) see the old file or the new one, never a part; on failure the temporary file is removed and
 * the error thrown.
 */
export function replaceFile(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
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

/** Writes `bytes` as DIR/step-NNNNNNNNN.safetensors atomically and keeps the last `keep` checkpoints. */
export function writeCheckpointFile(dir: string, step: number, bytes: Buffer, keep = 3): string {
  fs.mkdirSync(dir, { recursive: true });
  const final = path.join(dir, `step-${String(step).padStart(9, '0')}.safetensors`);
  try {
    replaceFile(final, bytes);
  } catch (e) {
    throw new CheckpointError(`could not write checkpoint ${final}: ${(e as Error).message} (the previous checkpoint is kept)`);
  }
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
  const all = listCheckpoints(dir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(old, { force: true });
  return final;
}

/** Checkpoint files in DIR, oldest first. */
export function listCheckpoints(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
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
