/**
 * `alexnet compare A B`: how two models of one preset differ, tensor by tensor (each layer's weights and
 * biases on each tower): the L2 norm of each, of their difference, the difference relative to A, and the
 * cosine of the angle between them; and conv1's colour score on each tower (inspect/colour.ts) in both.
 * For how a run's weights move between two checkpoints, or how two runs differ.
 */
import { towerParamLayers, type ModelSpec, type TowerIndex } from '@alexnet-mp/core';
import { colourScore } from './inspect/colour.js';
import type { TrainedModel } from './trained-model.js';
import { UserError } from './cli/errors.js';

export interface TensorComparison {
  readonly layer: string;
  readonly tensor: 'weight' | 'bias';
  readonly tower: TowerIndex;
  readonly values: number;
  /** L2 norms of A, of B and of B - A. */
  readonly norm_a: number;
  readonly norm_b: number;
  readonly norm_diff: number;
  /** |B - A| / |A| (null where A is all zero). */
  readonly relative: number | null;
  /** cos(A, B) (null where either is all zero). */
  readonly cosine: number | null;
}

export interface ModelComparison {
  readonly preset: string;
  readonly a: string;
  readonly b: string;
  readonly tensors: TensorComparison[];
  /** conv1's colour score (mean over its kernels) per tower, in A and in B. */
  readonly colour: { readonly tower: TowerIndex; readonly a: number; readonly b: number }[];
}

/** Norms and cosine of two tensors of one shape, in float64. */
export function tensorDiff(a: Float32Array, b: Float32Array): Pick<TensorComparison, 'norm_a' | 'norm_b' | 'norm_diff' | 'relative' | 'cosine'> {
  if (a.length !== b.length) throw new Error(`tensorDiff: ${a.length} values against ${b.length}`);
  let aa = 0;
  let bb = 0;
  let ab = 0;
  let dd = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    aa += x * x;
    bb += y * y;
    ab += x * y;
    dd += (y - x) * (y - x);
  }
  const na = Math.sqrt(aa);
  const nb = Math.sqrt(bb);
  return { norm_a: na, norm_b: nb, norm_diff: Math.sqrt(dd), relative: na > 0 ? Math.sqrt(dd) / na : null, cosine: na > 0 && nb > 0 ? Math.max(-1, Math.min(1, ab / (na * nb))) : null };
}

export function compareModels(a: TrainedModel, b: TrainedModel): ModelComparison {
  if (a.spec.name !== b.spec.name) throw new UserError(`${a.file} is preset ${a.spec.name} and ${b.file} preset ${b.spec.name}: only models of one preset compare`);
  const spec: ModelSpec = a.spec;
  const tensors: TensorComparison[] = [];
  for (const tower of [0, 1] as const) {
    for (const l of towerParamLayers(spec, tower)) {
      const pa = a.params[tower].get(l.name)!;
      const pb = b.params[tower].get(l.name)!;
      tensors.push({ layer: l.name, tensor: 'weight', tower, values: pa.w.length, ...tensorDiff(pa.w, pb.w) });
      tensors.push({ layer: l.name, tensor: 'bias', tower, values: pa.b.length, ...tensorDiff(pa.b, pb.b) });
    }
  }
  // in model order, tower 0 before tower 1 within a layer
  const order = new Map(spec.layers.map((l, i) => [l.name, i]));
  tensors.sort((x, y) => order.get(x.layer)! - order.get(y.layer)! || x.tower - y.tower || (x.tensor === y.tensor ? 0 : x.tensor === 'weight' ? -1 : 1));
  const conv1 = towerParamLayers(spec, 0)[0]!;
  const colour = conv1.shape[1] === 3
    ? ([0, 1] as const).map((tower) => ({ tower, a: colourScore(a.params[tower].get(conv1.name)!.w, conv1.shape).mean, b: colourScore(b.params[tower].get(conv1.name)!.w, conv1.shape).mean }))
    : [];
  return { preset: spec.name, a: a.description, b: b.description, tensors, colour };
}

const num = (v: number | null) => (v === null ? '-' : v === 0 ? '0' : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(4))));

/** The comparison as text: the two models, a table a tensor, the colour scores. */
export function formatComparison(c: ModelComparison): string {
  const head = ['layer', 'tensor', 'tower', 'values', '|A|', '|B|', '|B-A|', '|B-A|/|A|', 'cos(A,B)'];
  const rows = c.tensors.map((t) => [t.layer, t.tensor, String(t.tower), t.values.toLocaleString('en-US'), num(t.norm_a), num(t.norm_b), num(t.norm_diff), num(t.relative), t.cosine === null ? '-' : t.cosine.toFixed(6)]);
  const widths = head.map((_, k) => Math.max(...[head, ...rows].map((r) => r[k]!.length)));
  const line = (r: string[]) => r.map((x, k) => (k >= 3 ? x.padStart(widths[k]!) : x.padEnd(widths[k]!))).join('  ').trimEnd();
  const out = [`A: ${c.a}`, `B: ${c.b}`, '', line(head), ...rows.map(line)];
  if (c.colour.length > 0) {
    out.push('', "conv1's colour score (mean share of the kernels' energy in colour; grey 0, random ~0.667):");
    for (const s of c.colour) out.push(`  tower ${s.tower}: A ${s.a.toFixed(3)}, B ${s.b.toFixed(3)}`);
  }
  return out.join('\n') + '\n';
}
