/**
 * A run's metrics.jsonl as scalars where people look at them: a TensorBoard event file or a CSV.
 *
 * The event file is a TFRecord file of `Event` protobufs. The protobuf is encoded by hand rather
 * than with protobufjs: three small messages with six fields (Event, Summary, Summary.Value) take a
 * few dozen lines of varint and length-delimited writing, need no .proto file shipped or parsed at
 * run time, and keep the byte layout visible next to the framing it goes into.
 */
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32c, fsReason, makeDir } from '@alexnet-mp/core';
import { UserError } from './cli/errors.js';
import { readRunEvents } from './run-summary.js';
import { layerNormTotals } from './layer-norms.js';
import { rewoundTo } from './run-rewind.js';
import type { LayerNormsRow } from './coordinator-types.js';
import { writeWhole } from './temp-files.js';

// ---------------------------------------------------------------- CRC-32C (core's)

/** TFRecord's masked CRC: ((crc >>> 15) | (crc << 17)) + 0xa282ead8, modulo 2^32. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: uint64 length (little-endian), masked CRC of the length bytes, the data, masked CRC of the data. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// ---------------------------------------------------------------- protobuf, by hand

function varint(n: bigint): number[] {
  const bytes: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    bytes.push(b);
  } while (v !== 0n);
  return bytes;
}
const key = (field: number, wire: number) => varint(BigInt((field << 3) | wire));
function lengthDelimited(field: number, body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(key(field, 2)), Buffer.from(varint(BigInt(body.length))), body]);
}

export interface Scalar {
  readonly tag: string;
  readonly value: number;
}

/** Summary.Value { tag = 1 (string); simple_value = 2 (float) }. */
function summaryValue(s: Scalar): Buffer {
  const f = Buffer.alloc(4);
  f.writeFloatLE(s.value, 0);
  return Buffer.concat([lengthDelimited(1, Buffer.from(s.tag, 'utf8')), Buffer.from(key(2, 5)), f]);
}

/** Event { wall_time = 1 (double); step = 2 (int64); file_version = 3 (string); summary = 5 (Summary { repeated value = 1 }) }. */
export function encodeEvent(e: { wallTime: number; step?: number; fileVersion?: string; scalars?: readonly Scalar[] }): Buffer {
  const parts: Buffer[] = [];
  const d = Buffer.alloc(8);
  d.writeDoubleLE(e.wallTime, 0);
  parts.push(Buffer.from(key(1, 1)), d);
  if (e.step !== undefined) parts.push(Buffer.from([...key(2, 0), ...varint(BigInt(e.step))]));
  if (e.fileVersion !== undefined) parts.push(lengthDelimited(3, Buffer.from(e.fileVersion, 'utf8')));
  if (e.scalars) parts.push(lengthDelimited(5, Buffer.concat(e.scalars.map((s) => lengthDelimited(1, summaryValue(s))))));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- the run's scalars

/** One step of the run: its wall time and the scalars logged at it (training and/or evaluation). */
export interface StepScalars {
  readonly step: number;
  /** Seconds since the epoch: the session's start plus the time of its steps and evaluations up to this one. */
  readonly wallTime: number;
  readonly values: Map<string, number>;
}

/** The tags (and CSV columns) in order; exchange shares follow, one per tower. */
export const TRAIN_TAGS = ['train/loss', 'train/top1_error', 'train/top5_error', 'train/learning_rate', 'train/images_per_s'] as const;
export const EVAL_TAGS = ['eval/loss', 'eval/top1_error', 'eval/top5_error'] as const;
export const exchangeShareTag = (tower: number) => `train/exchange_share/tower${tower}`;
/** A layer's update-to-weight ratio |Δw| / |w| and weight norm, both towers taken together (steps with layer_norms: --norms-every). */
export const normsTags = (layer: string) => [`norms/${layer}/update_ratio`, `norms/${layer}/weight`] as const;
/** A worker's exchange time hidden behind compute over its step time (logs of workers that report it). */
export const exchangeHiddenShareTag = (tower: number) => `train/exchange_hidden_share/tower${tower}`;

interface StepLine {
  event: 'step';
  step: number;
  lr?: number;
  loss?: number;
  top1_error?: number;
  top5_error?: number;
  /** Older logs: the accuracies. */
  top1?: number;
  top5?: number;
  ms?: number;
  images_per_s?: number;
  workers?: { tower: number; total_ms?: number; exchange_ms?: number; exchange_hidden_ms?: number }[];
  layer_norms?: LayerNormsRow[];
}
interface EvalLine {
  event: 'eval';
  step: number;
  loss?: number;
  top1_error?: number;
  top5_error?: number;
  ms?: number;
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * The scalars of a run folder's metrics.jsonl, one entry per step that logged a training step or an
 * evaluation, in step order, numbered by the steps done (an evaluation after step N and that step share row N). What a
 * session logged past the checkpoint a later session or a restart went back to is dropped (run-rewind.ts): each
 * step has the values of the session that kept it.
 */
export function runScalars(runDir: string): { steps: StepScalars[]; tags: string[] } {
  const events = readRunEvents(runDir) as unknown as { event: string; [k: string]: unknown }[];
  const byStep = new Map<number, { wallTime: number; train?: Map<string, number>; eval?: Map<string, number> }>();
  let clock = 0;
  let towers = 0;
  /** Layers with norms, in the order first seen. */
  const layers: string[] = [];
  for (const e of events) {
    const to = rewoundTo(e);
    if (to !== null) {
      // a resumed session or a restart after a lost worker went back to a checkpoint: what came after it is done again
      for (const k of [...byStep.keys()]) if (k > to) byStep.delete(k);
    }
    if (e.event === 'run') {
      const started = typeof e.started === 'string' ? Date.parse(e.started) : NaN;
      clock = Number.isFinite(started) ? started / 1000 : clock;
      continue;
    }
    if (e.event !== 'step' && e.event !== 'eval') continue;
    if (!finite(e.step)) continue;
    // steps done, as the dashboard and summary count them: a step line's `step` is its 0-based index (the step
    // that makes 100 steps done, with its norms "after step 100", is step 99 there); an evaluation's, the steps before it
    const step = e.event === 'step' ? e.step + 1 : e.step;
    if (finite(e.ms)) clock += e.ms / 1000;
    const values = new Map<string, number>();
    if (e.event === 'step') {
      const s = e as unknown as StepLine;
      if (finite(s.loss)) values.set('train/loss', s.loss);
      // step lines say top1_error/top5_error; older logs the accuracy top1/top5, read as 1 - top1
      const top1 = finite(s.top1_error) ? s.top1_error : finite(s.top1) ? 1 - s.top1 : undefined;
      const top5 = finite(s.top5_error) ? s.top5_error : finite(s.top5) ? 1 - s.top5 : undefined;
      if (top1 !== undefined) values.set('train/top1_error', top1);
      if (top5 !== undefined) values.set('train/top5_error', top5);
      if (finite(s.lr)) values.set('train/learning_rate', s.lr);
      if (finite(s.images_per_s)) values.set('train/images_per_s', s.images_per_s);
      for (const w of s.workers ?? []) {
        if (finite(w.tower) && finite(w.exchange_ms) && finite(w.total_ms) && w.total_ms > 0) {
          values.set(exchangeShareTag(w.tower), w.exchange_ms / w.total_ms);
          if (finite(w.exchange_hidden_ms)) values.set(exchangeHiddenShareTag(w.tower), w.exchange_hidden_ms / w.total_ms);
          towers = Math.max(towers, w.tower + 1);
        }
      }
      if (Array.isArray(s.layer_norms)) {
        for (const l of layerNormTotals(s.layer_norms)) {
          if (!layers.includes(l.layer)) layers.push(l.layer);
          const [ratio, weight] = normsTags(l.layer);
          if (l.ratio !== null) values.set(ratio, l.ratio);
          values.set(weight, l.weight);
        }
      }
    } else {
      const v = e as unknown as EvalLine;
      if (finite(v.loss)) values.set('eval/loss', v.loss);
      if (finite(v.top1_error)) values.set('eval/top1_error', v.top1_error);
      if (finite(v.top5_error)) values.set('eval/top5_error', v.top5_error);
    }
    const at = byStep.get(step) ?? { wallTime: clock };
    at.wallTime = clock;
    if (e.event === 'step') at.train = values;
    else at.eval = values;
    byStep.set(step, at);
  }
  const steps = [...byStep.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([step, s]) => ({ step, wallTime: s.wallTime, values: new Map([...(s.train ?? []), ...(s.eval ?? [])]) }));
  const all = [...TRAIN_TAGS, ...Array.from({ length: towers }, (_, i) => exchangeShareTag(i)), ...Array.from({ length: towers }, (_, i) => exchangeHiddenShareTag(i)), ...EVAL_TAGS, ...layers.flatMap((l) => normsTags(l))];
  const present = new Set(steps.flatMap((s) => [...s.values.keys()]));
  return { steps, tags: all.filter((t) => present.has(t)) };
}

// ---------------------------------------------------------------- writers

/** The bytes of a TensorBoard event file: the file_version record, then one Event per step. */
export function eventFileBytes(steps: readonly StepScalars[], tags: readonly string[]): Buffer {
  const first = steps[0]?.wallTime ?? Date.now() / 1000;
  const records = [tfRecord(encodeEvent({ wallTime: first, fileVersion: 'brain.Event:2' }))];
  for (const s of steps) {
    const scalars = tags.filter((t) => s.values.has(t)).map((tag) => ({ tag, value: s.values.get(tag)! }));
    records.push(tfRecord(encodeEvent({ wallTime: s.wallTime, step: s.step, scalars })));
  }
  return Buffer.concat(records);
}

/** CSV: a header (step, wall_time, then the tags) and one row per step; a value the step did not log is empty. */
export function csvText(steps: readonly StepScalars[], tags: readonly string[]): string {
  const lines = [['step', 'wall_time', ...tags].join(',')];
  for (const s of steps) lines.push([String(s.step), s.wallTime.toFixed(3), ...tags.map((t) => (s.values.has(t) ? String(s.values.get(t)) : ''))].join(','));
  return lines.join('\n') + '\n';
}

function writeOrFail(file: string, data: string | Buffer, what: string): void {
  try {
    writeWhole(file, data);
  } catch (err) {
    throw new UserError(`cannot write ${what} ${file}: ${fsReason(err)}`);
  }
}

/**
 * Writes the TensorBoard event file into `dir` (made if missing); returns its path and the event files that were
 * in `dir` already (TensorBoard reads them all as one run: the same steps twice when one is an earlier export).
 */
export function writeTensorBoard(runDir: string, dir: string): { file: string; others: string[] } {
  const { steps, tags } = runScalars(runDir);
  const made = !existsSync(dir);
  makeDir(dir);
  const file = path.join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${os.hostname()}`);
  let others: string[] = [];
  try {
    others = readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.') && path.join(dir, f) !== file);
  } catch {
    // listed only to warn
  }
  try {
    writeOrFail(file, eventFileBytes(steps, tags), 'the event file');
  } catch (e) {
    // a folder made for it and left empty (a full disk) goes with the failed write
    if (made) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty after all: kept
      }
    }
    throw e;
  }
  return { file, others };
}

/** The CSV of a run folder and its number of rows. */
export function runCsv(runDir: string): { text: string; rows: number } {
  const { steps, tags } = runScalars(runDir);
  return { text: csvText(steps, tags), rows: steps.length };
}

/** Writes the CSV; returns the number of rows. */
export function writeCsv(runDir: string, file: string): number {
  const { text, rows } = runCsv(runDir);
  writeOrFail(file, text, 'the CSV file');
  return rows;
}
