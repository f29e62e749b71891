/**
 * `--resume RUN_DIR/checkpoints/step-N.safetensors`: a run goes on from one of its earlier checkpoints (a diverged
 * run, from before its loss rose), the later ones moved aside, and it computes what the first course computed.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listCheckpoints } from '@alexnet-mp/core';
import { readCheckpointHeader } from '@alexnet-mp/coordinator';
import { alexnet, tempDir } from './helpers.js';

const common = ['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '8'];
const steps = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"event":"step"'))
    .map((l) => JSON.parse(l) as { step: number; loss: number });

test('a run resumed from an earlier checkpoint file goes on from that step with the losses it had, the later checkpoints set aside', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-resume-file-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const first = alexnet([...common, '--steps', '5', '--checkpoint-every', '1', '--run-dir', dir]);
  t.is((await first.exited).code, 0, first.output());
  const ck = path.join(dir, 'checkpoints');
  t.deepEqual(listCheckpoints(ck).map((f) => path.basename(f)), ['step-000000003.safetensors', 'step-000000004.safetensors', 'step-000000005.safetensors']);
  const firstLosses = steps(dir);

  const again = alexnet([...common, '--resume', path.join(ck, 'step-000000003.safetensors'), '--steps', '4']);
  t.is((await again.exited).code, 0, again.output());
  const moved = /resuming from step 3: the 2 later checkpoints \(steps 4, 5\) moved to (\S+)$/m.exec(again.stderr.join('\n'));
  t.truthy(moved, again.output());
  t.deepEqual(fs.readdirSync(moved![1]!).sort(), ['step-000000004.safetensors', 'step-000000005.safetensors'], 'kept, not deleted');
  t.deepEqual(listCheckpoints(ck).map((f) => path.basename(f)), ['step-000000003.safetensors', 'step-000000004.safetensors']);
  // step 3 again: the loss the first course had (the resume is exact)
  const second = steps(dir).slice(firstLosses.length);
  t.deepEqual(second.map((s) => s.step), [3]);
  t.is(second[0]!.loss, firstLosses.find((s) => s.step === 3)!.loss);

  // the checkpoints say whether the loss was calm when they were written (a restarted coordinator reads it)
  t.is((readCheckpointHeader(path.join(ck, 'step-000000004.safetensors')).state.extra as { loss_calm?: boolean }).loss_calm, true);

  // a command line refused (another batch): nothing is moved aside
  const refused = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '16', '--resume', path.join(ck, 'step-000000003.safetensors'), '--steps', '4']);
  t.is((await refused.exited).code, 2, refused.output());
  t.deepEqual(listCheckpoints(ck).map((f) => path.basename(f)), ['step-000000003.safetensors', 'step-000000004.safetensors']);

  // a fork into another folder (--run-dir) leaves the original run's checkpoints where they are
  const fork = path.join(dir, 'fork');
  const forked = alexnet([...common, '--resume', path.join(ck, 'step-000000003.safetensors'), '--run-dir', fork, '--steps', '5']);
  t.is((await forked.exited).code, 0, forked.output());
  t.notRegex(forked.output(), /moved to/);
  t.deepEqual(listCheckpoints(ck).map((f) => path.basename(f)), ['step-000000003.safetensors', 'step-000000004.safetensors']);
  t.deepEqual(listCheckpoints(path.join(fork, 'checkpoints')).map((f) => path.basename(f)), ['step-000000004.safetensors', 'step-000000005.safetensors'], "the run's --checkpoint-every 1 goes on");

  // the run's checkpoints/ folder stands for the run folder
  const byFolder = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--resume', ck, '--steps', '4']);
  t.is((await byFolder.exited).code, 0, byFolder.output());
  t.deepEqual(byFolder.stderr, [`[launch] nothing to do: the run in ${dir} is at step 4, and --steps 4 counts from its start (give more to train on)`]);

  // a file that is not one of a run's checkpoints: one line
  const notOne = alexnet([...common, '--resume', path.join(dir, 'metrics.jsonl')]);
  t.is((await notOne.exited).code, 2);
  t.deepEqual(notOne.stderr, [`alexnet: --resume ${path.join(dir, 'metrics.jsonl')} is a file: give a run folder (its newest checkpoint) or one of its checkpoints, RUN_DIR/checkpoints/step-N.safetensors`]);
});

test("another run's checkpoint in a run folder (copied or renamed there) is refused by --resume, naming what gives it away", async (t) => {
  const dir = tempDir(t);
  const [mine, other] = [path.join(dir, 'mine'), path.join(dir, 'other')];
  for (const [run, seed, steps] of [[mine, '1', '2'], [other, '2', '3']] as const) {
    const p = alexnet([...common, '--seed', seed, '--steps', steps, '--run-dir', run]);
    t.is((await p.exited).code, 0, p.output());
  }
  const theirs = path.join(other, 'checkpoints', 'step-000000003.safetensors');
  const ck = path.join(mine, 'checkpoints');
  // under its own name: the seed is not the run's
  fs.copyFileSync(theirs, path.join(ck, 'step-000000003.safetensors'));
  const bySeed = alexnet([...common, '--resume', mine, '--steps', '5']);
  t.is((await bySeed.exited).code, 2, bySeed.output());
  t.deepEqual(bySeed.stderr, [`alexnet: cannot resume from ${ck}/step-000000003.safetensors: its seed is 2, the run's (run.json) 1: not this run's checkpoint (copied or renamed from another run?); move it out of ${ck}`]);
  // renamed: its name says another step than it holds
  fs.renameSync(path.join(ck, 'step-000000003.safetensors'), path.join(ck, 'step-000000005.safetensors'));
  const byName = alexnet([...common, '--resume', mine, '--steps', '6']);
  t.is((await byName.exited).code, 2, byName.output());
  t.deepEqual(byName.stderr, [`alexnet: cannot resume from ${ck}/step-000000005.safetensors: it holds step 3, its name says step 5: not this run's checkpoint (copied or renamed from another run?); move it out of ${ck}`]);
  // the commands that read a run's checkpoint (export, predict, evaluate, inspect) use it, as asked, but say so
  const exported = alexnet(['export', '--run', mine, '--out', path.join(dir, 'm.safetensors')]);
  t.is((await exported.exited).code, 0, exported.output());
  t.regex(exported.output(), /warning: \S+step-000000005\.safetensors: it holds step 3, its name says step 5: not this run's own checkpoint \(copied or renamed from another run\?\)/);
  // moved out, the run resumes from its own
  fs.rmSync(path.join(ck, 'step-000000005.safetensors'));
  const own = alexnet([...common, '--resume', mine, '--steps', '3']);
  t.is((await own.exited).code, 0, own.output());
});
