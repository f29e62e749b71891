import test, { type ExecutionContext } from 'ava';
import { tempDir } from './data-fixtures.js';
import fs from 'node:fs';
import path from 'node:path';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from '../src/checkpoint/safetensors.js';
import { torchPlan } from '../src/checkpoint/pytorch-names.js';
import { CheckpointError, decodeCheckpoint, latestCheckpoint, listCheckpoints, writeCheckpointFile } from '../src/checkpoint/checkpoint.js';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { cifar, paper, tiny } from '../src/model/presets.js';
import { syntheticBatch } from './synthetic.js';
import { randomArray, testBackend } from './helpers.js';

const tmp = (t: ExecutionContext) => tempDir(t, 'alexnet-ckpt-');

test('safetensors round trip keeps names, shapes, values and metadata; a truncated file is a clear error', (t) => {
  const a = { name: 'a.weight', shape: [2, 3], data: randomArray(6, 1) };
  const b = { name: 'b', shape: [5], data: randomArray(5, 2) };
  const buf = encodeSafetensors([a, b], { step: '7' });
  t.is(Number(buf.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
  const { tensors, metadata } = decodeSafetensors(buf);
  t.deepEqual(metadata, { step: '7' });
  t.deepEqual(tensors.get('a.weight')!.shape, [2, 3]);
  t.deepEqual(Array.from(tensors.get('a.weight')!.data), Array.from(a.data));
  t.deepEqual(Array.from(tensors.get('b')!.data), Array.from(b.data));
  t.throws(() => decodeSafetensors(buf.subarray(0, buf.length - 3)), { instanceOf: SafetensorsError, message: /does not fit|truncated/ });
});

test("checkpoint tensors are named and shaped like a PyTorch AlexNet with groups = 2", (t) => {
  const shapes = Object.fromEntries(torchPlan(paper).map((p) => [`${p.module}.weight`, p.weightShape]));
  t.deepEqual(shapes, {
    'features.0.weight': [96, 3, 11, 11],
    'features.4.weight': [256, 48, 5, 5],
    'features.8.weight': [384, 256, 3, 3],
    'features.10.weight': [384, 192, 3, 3],
    'features.12.weight': [256, 192, 3, 3],
    'classifier.1.weight': [4096, 9216],
    'classifier.4.weight': [4096, 4096],
    'classifier.6.weight': [1000, 4096],
  });
});

test('checkpoint files are written atomically and only the last K are kept; a failed write keeps the previous one', (t) => {
  const dir = tmp(t);
  for (let s = 1; s <= 5; s++) writeCheckpointFile(dir, s * 10, Buffer.from(`ckpt ${s}`), 3);
  t.deepEqual(listCheckpoints(dir).map((f) => path.basename(f)), ['step-000000030.safetensors', 'step-000000040.safetensors', 'step-000000050.safetensors']);
  t.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
  // a directory where the next file should go makes the rename fail
  fs.mkdirSync(path.join(dir, 'step-000000060.safetensors', 'blocker'), { recursive: true });
  t.throws(() => writeCheckpointFile(dir, 60, Buffer.from('ckpt 6'), 3), { instanceOf: CheckpointError, message: /previous checkpoint is kept/ });
  t.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  t.is(fs.readFileSync(path.join(dir, 'step-000000050.safetensors'), 'utf8'), 'ckpt 5');
});

test('a run resumed from a checkpoint gives the same losses and weights as the run that was not interrupted', async (t) => {
  const batches = Array.from({ length: 6 }, (_, i) => syntheticBatch(8, tiny.inputSize, 50 + i));
  const hyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
  const straight = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 8, seed: 9, hyper });
  const want: number[] = [];
  for (const b of batches) want.push((await straight.trainStep(b)).loss);

  const first = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 8, seed: 9, hyper });
  const got: number[] = [];
  for (const b of batches.slice(0, 3)) got.push((await first.trainStep(b)).loss);
  const dir = tmp(t);
  const file = writeCheckpointFile(dir, first.step, await first.checkpoint({ epoch: 0 }));
  first.destroy();
  t.is(latestCheckpoint(dir), file);
  const { trainer: resumed, extra } = await GroupedTrainer.resume({ spec: tiny, backend: testBackend, batch: 8 }, fs.readFileSync(file), file);
  t.is(resumed.step, 3);
  t.is(extra.epoch, 0);
  for (const b of batches.slice(3)) got.push((await resumed.trainStep(b)).loss);
  t.deepEqual(got, want);
  const [p, q] = [await straight.syncParams(), await resumed.syncParams()];
  for (const tw of [0, 1] as const) for (const [name, lp] of p[tw]) t.deepEqual(Array.from(q[tw].get(name)!.w), Array.from(lp.w), `tower ${tw} ${name}`);
  straight.destroy();
  resumed.destroy();
});

test('a checkpoint of another preset is refused with the reason', async (t) => {
  const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 4, seed: 1 });
  const buf = await tr.checkpoint();
  tr.destroy();
  t.throws(() => decodeCheckpoint(cifar, buf, 'run/step-1'), { instanceOf: CheckpointError, message: /run\/step-1 was made for preset "tiny"/ });
});
