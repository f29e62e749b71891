/**
 * `alexnet compare A B`: two checkpoints of a tiny run (and a model file, and a run folder) tensor by
 * tensor: the norms and cosine are those computed here from the decoded checkpoints; a model against
 * itself differs by nothing; mistakes are one line, exit 2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { decodeCheckpoint, getPreset } from '@alexnet-mp/core';
import { DEFAULT_MODEL_FILE } from '../packages/coordinator/src/trained-model.js';
import { tensorDiff, type ModelComparison } from '../packages/coordinator/src/compare-models.js';
import { alexnet } from './helpers.js';

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

let run: Promise<string> | null = null;
/** A tiny run of 3 steps keeping a checkpoint after each. */
function setUp(): Promise<string> {
  run ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-compare-'));
    dirs.push(dir);
    const p = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '8', '--steps', '3', '--checkpoint-every', '1', '--run-dir', dir]);
    const { code } = await p.exited;
    if (code !== 0) throw new Error(p.output());
    return dir;
  })();
  return run;
}

const ck = (dir: string, step: number) => path.join(dir, 'checkpoints', `step-${String(step).padStart(9, '0')}.safetensors`);

test('tensorDiff: norms, the difference relative to A and the cosine, in float64', (t) => {
  const d = tensorDiff(Float32Array.from([3, 4, 0]), Float32Array.from([0, 4, 3]));
  t.is(d.norm_a, 5);
  t.is(d.norm_b, 5);
  t.is(d.norm_diff, Math.sqrt(18));
  t.is(d.relative, Math.sqrt(18) / 5);
  t.is(d.cosine, 16 / 25);
  t.deepEqual(tensorDiff(new Float32Array(2), Float32Array.from([1, 1])), { norm_a: 0, norm_b: Math.SQRT2, norm_diff: Math.SQRT2, relative: null, cosine: null });
});

test("compare a run's checkpoint of step 1 with its folder (the latest, step 3): every tensor of both towers, as computed from the files", async (t) => {
  const dir = await setUp();
  const p = alexnet(['compare', ck(dir, 1), dir, '--json']);
  t.is((await p.exited).code, 0, p.output());
  const c = JSON.parse(p.stdout[0]!) as ModelComparison;
  t.regex(c.a, /step-000000001\.safetensors \(preset tiny, step 1 of run /);
  t.regex(c.b, /step-000000003\.safetensors \(preset tiny, step 3 of run /);
  const spec = getPreset('tiny');
  const A = decodeCheckpoint(spec, fs.readFileSync(ck(dir, 1))).params;
  const B = decodeCheckpoint(spec, fs.readFileSync(ck(dir, 3))).params;
  // conv1..fc7 on both towers, fc8 on tower 0: weights and biases
  t.is(c.tensors.length, 2 * (2 * 7 + 1));
  for (const x of c.tensors) {
    const a = A[x.tower].get(x.layer)!;
    const b = B[x.tower].get(x.layer)!;
    const want = tensorDiff(x.tensor === 'weight' ? a.w : a.b, x.tensor === 'weight' ? b.w : b.b);
    t.deepEqual({ norm_a: x.norm_a, norm_b: x.norm_b, norm_diff: x.norm_diff, relative: x.relative, cosine: x.cosine }, want, `${x.layer} ${x.tensor} tower ${x.tower}`);
  }
  t.true(c.tensors.some((x) => x.norm_diff > 0), 'two steps of training moved the weights');
  t.is(c.colour.length, 2);
  // the text: a row a tensor under the two models' lines
  const text = alexnet(['compare', ck(dir, 1), ck(dir, 3)]);
  t.is((await text.exited).code, 0, text.output());
  t.regex(text.stdout[0]!, /^A: .*step-000000001/);
  t.is(text.stdout.filter((l) => /^(conv|fc)\d +(weight|bias) +[01] /.test(l)).length, c.tensors.length);
  t.regex(text.output(), /conv1's colour score .*\n {2}tower 0: A 0\.\d{3}, B 0\.\d{3}/);
  // a run's checkpoints/ folder reads as its run folder (the latest checkpoint)
  const folder = alexnet(['compare', dir, path.join(dir, 'checkpoints'), '--json']);
  t.is((await folder.exited).code, 0, folder.output());
  t.regex((JSON.parse(folder.stdout[0]!) as ModelComparison).b, /step-000000003\.safetensors \(preset tiny, step 3 of run /);
});

test('a model against itself differs by nothing; two presets, or a path that is not there, are one line', async (t) => {
  const dir = await setUp();
  const same = alexnet(['compare', DEFAULT_MODEL_FILE, DEFAULT_MODEL_FILE, '--json']);
  t.is((await same.exited).code, 0, same.output());
  const c = JSON.parse(same.stdout[0]!) as ModelComparison;
  t.true(c.tensors.every((x) => x.norm_diff === 0 && x.relative === 0 && (x.cosine === null || Math.abs(x.cosine - 1) < 1e-12)));
  for (const [args, re] of [
    [['compare', dir, DEFAULT_MODEL_FILE], /^alexnet: \S+ is preset tiny and \S+ preset cifar: only models of one preset compare$/],
    [['compare', dir, path.join(dir, 'nope')], /^alexnet: \S+nope: no such file or folder$/],
    [['compare', ck(dir, 9), dir], /^alexnet: \S+step-000000009\.safetensors: no such file or folder$/],
  ] as [string[], RegExp][]) {
    const p = alexnet(args);
    t.is((await p.exited).code, 2, p.output());
    t.is(p.stderr.length, 1, p.output());
    t.regex(p.stderr[0]!, re);
  }
});
