/** resume.ts: which data and update rule a resumed run goes on with when the command line does not say, from wherever it is resumed. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError } from '@alexnet-mp/core';
import { courseBegunFrom, defaultLr, forgetCourse, pinnedCheckpoint, resumeTarget, resumedData, runCadence, runHyper, runOfCheckpointFile, runOfCheckpointsFolder, savedDataOf, unpinCheckpoint } from '../src/resume.js';

function tempDir(t: { teardown(f: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-resume-data-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('a checkpoint keeps --data as given and, for a folder, where it resolved', (t) => {
  t.deepEqual(savedDataOf('cifar10', '/somewhere'), { data_name: 'cifar10' });
  t.deepEqual(savedDataOf('synthetic', '/somewhere'), { data_name: 'synthetic' });
  t.deepEqual(savedDataOf('../data/c10', '/work/repo'), { data_name: '../data/c10', data_path: '/work/data/c10' });
  t.deepEqual(savedDataOf('/abs/c10', '/work/repo'), { data_name: '/abs/c10', data_path: '/abs/c10' });
});

test('a relative folder is used as given where it resolves, else where it was, else a clear error', (t) => {
  const root = tempDir(t);
  const repo = path.join(root, 'repo');
  const data = path.join(root, 'data', 'c10');
  const elsewhere = path.join(root, 'elsewhere', 'deeper');
  for (const d of [repo, data, elsewhere]) fs.mkdirSync(d, { recursive: true });
  const saved = savedDataOf('../data/c10', repo);
  t.is(saved.data_path, data);

  // from the directory the run was started in: as given (the run folder stays portable)
  t.deepEqual(resumedData(saved, repo), { data: '../data/c10' });
  // from another directory: the folder where it was, said in a note
  const moved = resumedData(saved, elsewhere);
  t.is(moved?.data, data);
  t.regex(moved?.note ?? '', /the run's data \.\.\/data\/c10 is not there from .*deeper: using .*data\/c10/);
  // gone from both places: one sentence that says what to do
  fs.rmSync(data, { recursive: true });
  const e = t.throws(() => resumedData(saved, elsewhere), { instanceOf: CheckpointError });
  t.regex(e!.message, /trained on \.\.\/data\/c10 \(.*data\/c10 when the run was checkpointed\), which is not there from .*: run the command from the directory the run was started in, or give --data/);
  // from the directory it was started in, or given as an absolute path: the one place, named once
  t.is(t.throws(() => resumedData(saved, repo))!.message, `the run was trained on ${data}, which is not there any more: give --data with the same images`);
  t.is(t.throws(() => resumedData(savedDataOf(data, repo), elsewhere))!.message, `the run was trained on ${data}, which is not there any more: give --data with the same images`);
  // checkpoints written before data_path was saved: the relative name alone
  t.throws(() => resumedData({ data_name: '../data/c10' }, elsewhere), { message: /relative to the directory the run was started in/ });
});

test('names that are not folders, and runs without saved data, pass through', (t) => {
  const nowhere = path.join(os.tmpdir(), 'alexnet-no-such-dir-for-this-test');
  t.deepEqual(resumedData({ data_name: 'cifar10' }, nowhere), { data: 'cifar10' });
  t.deepEqual(resumedData({ data_name: 'synthetic' }, nowhere), { data: 'synthetic' });
  t.is(resumedData({}, nowhere), undefined);
});

test('the update rule: the command line, else the checkpoint, else the defaults; runs saved before --decay-biases keep decaying biases', (t) => {
  const defaults = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005, decayBiases: false };
  t.deepEqual(runHyper({}, {}), defaults);
  const savedNow = { hyper: { lr: 0.001, momentum: 0.8, weightDecay: 0.001, decayBiases: false } };
  t.deepEqual(runHyper({}, savedNow), savedNow.hyper);
  // a checkpoint written before the option: its hyper has no decayBiases, and its biases were decayed
  const savedBefore = { hyper: { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 } };
  t.deepEqual(runHyper({}, savedBefore), { ...savedBefore.hyper, decayBiases: true });
  t.deepEqual(runHyper({ 'decay-biases': false, lr: 0.02 }, savedBefore), { ...savedBefore.hyper, lr: 0.02, decayBiases: false });
  t.is(runHyper({ 'decay-biases': true }, {}).decayBiases, true);
});

test("a resumed run keeps its checkpoint and evaluation cadence unless told, and 0 given turns one off", (t) => {
  const plan = { checkpoint_every: 100, checkpoint_minutes: 5, keep: 1, eval_every: 50, eval_batch: 32, eval_batches: null, eval_views: 'ten' as const };
  t.deepEqual(runCadence({}, {}, 64), { checkpointEvery: 0, checkpointMinutes: 30, keep: 3, evalEvery: 0, evalBatch: 64, evalBatches: undefined, evalViews: 'centre' });
  t.deepEqual(runCadence({}, plan, 64), { checkpointEvery: 100, checkpointMinutes: 5, keep: 1, evalEvery: 50, evalBatch: 32, evalBatches: undefined, evalViews: 'ten' });
  const off = runCadence({ 'checkpoint-every': 0, 'checkpoint-minutes': 0, 'eval-every': 0 }, plan, 64);
  t.is(off.checkpointEvery, 0, '--checkpoint-every 0 with --resume: no checkpoints between epoch ends');
  t.is(off.checkpointMinutes, 0, '--checkpoint-minutes 0 with --resume: none by time');
  t.is(off.evalEvery, 0, '--eval-every 0 with --resume: evaluations at epoch ends only');
  t.is(runCadence({ 'eval-batches': 2, keep: 5 }, plan, 64).evalBatches, 2);
});

test('--resume names a run folder or one of its checkpoints; a chosen checkpoint is remembered for its folder until forgotten (a requeued job)', (t) => {
  const dir = tempDir(t);
  const ck = path.join(dir, 'run', 'checkpoints');
  fs.mkdirSync(ck, { recursive: true });
  const file = path.join(ck, 'step-000000040.safetensors');
  fs.writeFileSync(file, 'x');
  t.is(resumeTarget(path.join(dir, 'run')), path.join(dir, 'run'));
  t.is(pinnedCheckpoint(path.join(dir, 'run')), undefined, 'a folder: its newest checkpoint');
  t.is(resumeTarget(file), path.join(dir, 'run'));
  t.is(pinnedCheckpoint(path.join(dir, 'run')), file);
  unpinCheckpoint(path.join(dir, 'run'));
  t.is(pinnedCheckpoint(path.join(dir, 'run')), undefined);
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
  t.throws(() => resumeTarget(path.join(dir, 'notes.txt')), { message: /notes\.txt is a file: give a run folder \(its newest checkpoint\) or one of its checkpoints/ });
  // a checkpoint that is not there (pruned, mistyped): said as such, with the steps there are
  t.throws(() => resumeTarget(path.join(ck, 'step-500.safetensors')), { message: `--resume ${path.join(ck, 'step-500.safetensors')}: no such checkpoint; ${ck} has step 40` });
  t.throws(() => resumeTarget(path.join(dir, 'gone', 'checkpoints', 'step-000000001.safetensors')), { message: /: no such checkpoint$/ });
  // a course from step 30 has begun (its mark) and --keep pruned step 30 since: a requeued job's --resume of it is the run folder
  fs.writeFileSync(path.join(ck, 'resumed-from'), '30\n');
  t.is(resumeTarget(path.join(ck, 'step-000000030.safetensors')), path.join(dir, 'run'));
  t.true(courseBegunFrom(path.join(dir, 'run'), 30));
  unpinCheckpoint(path.join(dir, 'run'));
  // a new course from a chosen checkpoint forgets an earlier course's mark
  forgetCourse(path.join(dir, 'run'));
  t.false(courseBegunFrom(path.join(dir, 'run'), 30));
  t.throws(() => resumeTarget(path.join(ck, 'step-000000030.safetensors')), { message: /: no such checkpoint; / });
  t.is(defaultLr('tiny'), 0.005);
  t.is(defaultLr('paper'), 0.01);
  t.is(runHyper({}, {}, 'tiny').lr, 0.005);
  t.is(runHyper({}, { hyper: { lr: 0.02, momentum: 0.9, weightDecay: 0.0005 } }, 'tiny').lr, 0.02, "a resumed run keeps its own");
});

test('the run of a checkpoint file or of a checkpoints/ folder, said as the path was given', (t) => {
  const dir = tempDir(t);
  const ck = path.join(dir, 'run', 'checkpoints');
  fs.mkdirSync(ck, { recursive: true });
  t.deepEqual(runOfCheckpointFile(path.join(ck, 'step-000000040.safetensors')), { runDir: path.join(dir, 'run'), step: 40 }, 'need not exist');
  const rel = path.relative(process.cwd(), path.join(ck, 'step-000000007.safetensors'));
  t.deepEqual(runOfCheckpointFile(rel), { runDir: path.relative(process.cwd(), path.join(dir, 'run')), step: 7 }, 'relative stays relative');
  t.is(runOfCheckpointFile(path.join(ck, 'notes.safetensors')), null, 'not a step file');
  t.is(runOfCheckpointFile(path.join(dir, 'run', 'step-000000040.safetensors')), null, 'not in checkpoints/');
  t.is(runOfCheckpointsFolder(ck), path.join(dir, 'run'));
  t.is(runOfCheckpointsFolder(`${ck}${path.sep}`), path.join(dir, 'run'), 'a trailing separator');
  t.is(runOfCheckpointsFolder(path.join(dir, 'run')), null);
  // a run folder named checkpoints (it has checkpoints/ of its own) is that run
  fs.mkdirSync(path.join(dir, 'checkpoints', 'checkpoints'), { recursive: true });
  t.is(runOfCheckpointsFolder(path.join(dir, 'checkpoints')), null);
});
