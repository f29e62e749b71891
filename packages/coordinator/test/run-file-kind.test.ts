// A run's own files, which no other command's output replaces (run-dir.ts runFileKind, trained-model.ts checkWritable):
// its checkpoints (by place and name, or by header), its metrics.jsonl, run.json, logs and lock.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHECKPOINT_FORMAT } from '@alexnet-mp/core';
import { runFileKind } from '../src/run-dir.js';
import { checkWritable } from '../src/trained-model.js';

test("a run's checkpoints, metrics, run.json, logs and lock are its own; files beside them and elsewhere are not", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-run-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = path.join(dir, 'r1');
  fs.mkdirSync(path.join(run, 'checkpoints'), { recursive: true });
  fs.writeFileSync(path.join(run, 'metrics.jsonl'), '{}\n');
  const ckpt = path.join(run, 'checkpoints', 'step-000000200.safetensors');
  t.regex(runFileKind(ckpt) ?? '', /^a training checkpoint/);
  for (const f of ['metrics.jsonl', 'run.json', 'launch.log', 'worker0.log', 'coord.log', 'run.lock']) t.is(runFileKind(path.join(run, f)), `the ${f} of the run in ${run}`, f);
  t.is(runFileKind(path.join(run, 'wrong.jsonl')), null, 'a new file of another name in the run folder');
  t.is(runFileKind(path.join(dir, 'metrics.jsonl')), null, 'a metrics.jsonl outside a run folder');
  t.is(runFileKind(path.join(dir, 'notes.txt')), null);
  // a checkpoint outside checkpoints/ (copied, or set aside): by the format its header names
  const header = Buffer.from(JSON.stringify({ __metadata__: { format: CHECKPOINT_FORMAT } }));
  const copied = path.join(dir, 'backup.safetensors');
  fs.writeFileSync(copied, Buffer.concat([Buffer.from(new BigUint64Array([BigInt(header.length)]).buffer), header]));
  t.regex(runFileKind(copied) ?? '', /^a training checkpoint/);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([Buffer.from(new BigUint64Array([2n]).buffer), Buffer.from('{}')]));
  t.is(runFileKind(path.join(dir, 'model.safetensors')), null, 'another safetensors file (a model file, written again by export)');
  // a checkpoint's name, not written yet: said as a name
  const e = t.throws(() => checkWritable(ckpt, '--wrong', 'wrong.jsonl'));
  t.is(e?.message, `--wrong ${ckpt} is a training checkpoint's name in a run's checkpoints folder (what --resume would read): write it elsewhere, e.g. --wrong wrong.jsonl`);
  fs.writeFileSync(ckpt, 'x');
  const there = t.throws(() => checkWritable(ckpt, '--wrong', 'wrong.jsonl'));
  t.is(there?.message, `--wrong ${ckpt} is a training checkpoint (weights and momentum, what --resume reads): write it elsewhere, e.g. --wrong wrong.jsonl`);
  t.notThrows(() => checkWritable(path.join(run, 'wrong.jsonl'), '--wrong', 'wrong.jsonl'));
});
