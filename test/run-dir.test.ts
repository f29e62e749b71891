/**
 * One run per run directory, and file errors under `launch` (issue 20): the lock, a reused directory,
 * --overwrite, stray temporary files, run directories that cannot be made or written (under /proc, under a
 * file, a read-only mount), a disk that fills mid-run, a log file that cannot be opened. Tiny preset, a few
 * steps each; the mounts need root and are skipped without it.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readCheckpointHeader } from '@alexnet-mp/coordinator';
import { stepOfFile } from '@alexnet-mp/core';
import { alexnet, alive, childPids, type Proc } from './helpers.js';

const common = ['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '8'];

const tempDir = (t: import('ava').ExecutionContext): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-rundir-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};

const kill = (t: import('ava').ExecutionContext, p: Proc) =>
  t.teardown(async () => {
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      p.proc.kill('SIGKILL');
      await p.exited;
    }
  });

/** The run's lines of alexnet's own (not a child's): what a user reads as the outcome. */
const own = (p: Proc) => p.stderr.filter((l) => l.startsWith('alexnet: '));

const events = (runDir: string) =>
  fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; step?: number; run_id?: string });

const noStack = (t: import('ava').ExecutionContext, p: Proc) => t.notRegex(p.output(), /internal error|\n\s+at [\w.<]+ \(|node:internal/, 'no stack trace');

/** A tmpfs of `size` at a new folder (root only); null when mounting is not allowed here. */
function mountTmpfs(t: import('ava').ExecutionContext, options: string): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-mnt-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
  t.teardown(() => {
    spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;

test('a directory holding another run\'s checkpoints is refused (one line, exit 2) unless --resume or --overwrite; --overwrite starts clean', async (t) => {
  const dir = tempDir(t);
  const first = alexnet([...common, '--steps', '4', '--checkpoint-every', '2', '--run-dir', dir]);
  t.is((await first.exited).code, 0, first.output());
  const firstId = events(dir)[0]!.run_id!;
  const before = fs.readdirSync(path.join(dir, 'checkpoints')).sort();
  t.deepEqual(before, ['step-000000002.safetensors', 'step-000000004.safetensors']);

  const again = alexnet([...common, '--steps', '2', '--checkpoint-every', '1', '--seed', '7', '--run-dir', dir]);
  t.is((await again.exited).code, 2, again.output());
  t.deepEqual(own(again), [
    `alexnet: ${dir} holds another run's checkpoints of run ${firstId} (2, the latest step-000000004.safetensors): continue that run with --resume ${dir}, start over with --overwrite, or give another --run-dir`,
  ]);
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')).sort(), before, 'nothing of the first run touched');
  t.false(fs.existsSync(path.join(dir, 'run.lock')), 'the lock is released');

  const both = alexnet([...common, '--resume', dir, '--overwrite']);
  t.is((await both.exited).code, 2, both.output());
  t.deepEqual(own(both), ['alexnet: --overwrite and --resume: give one (--resume continues the run in the directory, --overwrite starts over there)']);

  const over = alexnet([...common, '--steps', '2', '--checkpoint-every', '1', '--keep', '1', '--seed', '7', '--run-dir', dir, '--overwrite']);
  t.is((await over.exited).code, 0, over.output());
  t.regex(over.output(), /--overwrite: removed the previous run's 2 checkpoints and its logs from /);
  // --keep 1: the run's own last checkpoint stays
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')), ['step-000000002.safetensors']);
  const ev = events(dir);
  t.is(ev.filter((e) => e.event === 'run').length, 1, 'metrics.jsonl of the new run alone');
  t.not(ev[0]!.run_id, firstId);
  t.is(readCheckpointHeader(path.join(dir, 'checkpoints', 'step-000000002.safetensors')).state.extra!.run_id, ev[0]!.run_id);
  t.false(fs.existsSync(path.join(dir, 'run.lock')));
});

test("a directory holding another run's log of steps but no checkpoint (the shipped run's, a run killed before its first) is refused unless --overwrite", async (t) => {
  const dir = tempDir(t);
  fs.copyFileSync(path.join('training', 'cifar10', 'metrics.jsonl'), path.join(dir, 'metrics.jsonl'));
  fs.copyFileSync(path.join('training', 'cifar10', 'run.json'), path.join(dir, 'run.json'));
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
  const again = alexnet([...common, '--steps', '2', '--run-dir', dir]);
  t.is((await again.exited).code, 2, again.output());
  t.deepEqual(own(again), [
    `alexnet: ${dir} holds another run's log (${dir}/metrics.jsonl, run 20261130T232934Z-e69840) but no checkpoint to continue it from: start over with --overwrite (its log goes), or give another --run-dir`,
  ]);
  t.is(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'), lines, 'the log untouched');
  // nothing to resume either: said why, and what to do
  const resume = alexnet([...common, '--resume', dir]);
  t.is((await resume.exited).code, 2, resume.output());
  t.deepEqual(own(resume), [
    `alexnet: --resume ${dir}: no checkpoint in ${dir}/checkpoints (the run 20261130T232934Z-e69840 ended before its first checkpoint, or keeps only a model exported from it, which holds no momentum to go on from: start a new run, with --run-dir ${dir} --overwrite or another folder)`,
  ]);
  const over = alexnet([...common, '--steps', '2', '--run-dir', dir, '--overwrite']);
  t.is((await over.exited).code, 0, over.output());
  t.regex(over.output(), /--overwrite: removed the previous run's logs from \S+ \(it had no checkpoint\)/);
  t.is(events(dir).filter((e) => e.event === 'run').length, 1, 'metrics.jsonl of the new run alone');
  // a log without steps (a run that failed before its first) is no history to keep: a new run starts there
  const failed = tempDir(t);
  fs.writeFileSync(path.join(failed, 'metrics.jsonl'), JSON.stringify({ event: 'run', run_id: 'x', start_step: 0 }) + '\n' + JSON.stringify({ event: 'failed', error: 'e' }) + '\n');
  const retry = alexnet([...common, '--steps', '2', '--run-dir', failed]);
  t.is((await retry.exited).code, 0, retry.output());
});

test('the lock: a second launch on a directory in use is refused naming the holder; a lock left by a dead process is broken, and said', async (t) => {
  const dir = tempDir(t);
  const running = alexnet([...common, '--steps', '100000', '--checkpoint-every', '1000', '--run-dir', dir]);
  kill(t, running);
  await running.waitFor(/"event":"step","step":1,/, 120_000);
  const lock = JSON.parse(fs.readFileSync(path.join(dir, 'run.lock'), 'utf8')) as { host: string; pid: number; command: string };
  t.like(lock, { host: os.hostname(), pid: running.proc.pid, command: 'alexnet launch' });
  // --resume of the run in use says so (not that it has no checkpoint yet)
  for (const args of [[...common, '--steps', '2', '--run-dir', dir], ['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--run-dir', dir], [...common, '--resume', dir], ['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--resume', dir]]) {
    const second = alexnet(args);
    t.is((await second.exited).code, 2, second.output());
    t.is(own(second).length, 1, second.output());
    t.regex(own(second)[0]!, new RegExp(`^alexnet: ${dir} is in use by another run: alexnet launch, pid ${running.proc.pid} on ${os.hostname()}, since \\S+ \\(${dir}/run\\.lock; remove it only if that process is gone\\)$`));
    t.false('worker0' in childPids(second.stderr), 'no worker started');
  }
  // the running one still writes its metrics, alone
  running.proc.kill('SIGINT');
  t.is((await running.exited).code, 130, running.output());
  t.false(fs.existsSync(path.join(dir, 'run.lock')));

  // a lock whose holder is gone (same host, pid not alive): broken
  const gone = spawnSync(process.execPath, ['-e', '0']);
  t.is(gone.status, 0);
  const deadPid = gone.pid!;
  t.false(alive(deadPid));
  fs.writeFileSync(path.join(dir, 'run.lock'), JSON.stringify({ host: os.hostname(), pid: deadPid, since: '2026-01-01T00:00:00Z', command: 'alexnet launch' }));
  // one step past the newest checkpoint (the one SIGINT wrote): a resume with steps to train
  const newest = fs.readdirSync(path.join(dir, 'checkpoints')).sort().at(-1)!;
  const resumed = alexnet([...common, '--resume', dir, '--steps', String(readCheckpointHeader(path.join(dir, 'checkpoints', newest)).state.step + 1)]);
  t.is((await resumed.exited).code, 0, resumed.output());
  t.regex(resumed.output(), new RegExp(`run\\.lock: the run that held it \\(pid ${deadPid}, alexnet launch, since 2026-01-01T00:00:00Z\\) is gone: lock broken`));
});

test('what the coordinator would refuse once the workers are up is said before any process starts: a resumed run\'s batch, seed, preset or classes, a data folder missing or without images, ten views of generated images, evaluations of a folder without a held-out split, a cache folder that is a file', async (t) => {
  const dir = tempDir(t);
  const first = alexnet([...common, '--steps', '2', '--run-dir', dir]);
  t.is((await first.exited).code, 0, first.output());
  // an image folder without val/ or test/: a CIFAR-10 JPEG a class
  const noHeldOut = path.join(dir, 'no-held-out');
  for (const c of ['cat', 'dog']) {
    fs.mkdirSync(path.join(noHeldOut, 'train', c), { recursive: true });
    fs.copyFileSync(path.resolve('../shared/datasets/cifar10/test', c, '0000.jpg'), path.join(noHeldOut, 'train', c, '0000.jpg'));
  }
  for (const [args, line] of [
    [['launch', '--backend', 'webasm', '--resume', dir, '--batch', '16'], `alexnet: --batch 16: the run in ${dir} has batch 8 (the data order depends on it); leave --batch out`],
    [['launch', '--backend', 'webasm', '--resume', dir, '--seed', '7'], `alexnet: --seed 7: the run in ${dir} has seed 1; leave --seed out`],
    [['launch', '--backend', 'webasm', '--resume', dir, '--preset', 'cifar'], `alexnet: cannot resume from ${dir}/checkpoints/step-000000002.safetensors: it is a checkpoint of preset "tiny", this run is preset "cifar" (give --preset tiny)`],
    [[...common, '--data', path.join(dir, 'no-such-data')], `alexnet: data folder ${dir}/no-such-data does not exist: expected an image folder (train/<class>/*.jpg|jpeg|png|webp|tif|gif, and val/ or test/), the CIFAR-10 binary folder (data_batch_1.bin ... test_batch.bin), or "cifar10"`],
    [[...common, '--data', path.join(dir, 'checkpoints')], `alexnet: ${dir}/checkpoints is neither an image folder (no train/ folder: expected train/<class>/*.jpg|jpeg|png|webp|tif|gif, and val/ or test/) nor the CIFAR-10 binary folder (no data_batch_1.bin)`],
    [[...common, '--data', path.join(dir, 'metrics.jsonl')], `alexnet: ${dir}/metrics.jsonl is not a folder: expected an image folder or the CIFAR-10 binary folder`],
    [[...common, '--eval-views', 'ten'], 'alexnet: --eval-views ten needs real data (--data cifar10|DIR): synthetic images have no larger image to take patches from'],
    // evaluations of a folder without a held-out split: refused before its training split is decoded
    [[...common, '--data', noHeldOut, '--eval-every', '5'], `alexnet: --eval-every 5: --data ${noHeldOut} has no held-out split (val/ or test/) to evaluate on: add one, or leave --eval-every out`],
    [[...common, '--data', noHeldOut, '--epochs', '1', '--lr-schedule', 'plateau'], `alexnet: --lr-schedule plateau: --data ${noHeldOut} has no held-out split (val/ or test/) to evaluate on: add one, or leave --lr-schedule out`],
    // a cache folder that is a file: the coordinator could not decode into it
    [[...common, '--data', noHeldOut, '--cache-dir', path.join(dir, 'metrics.jsonl')], `alexnet: cannot make the cache folder ${dir}/metrics.jsonl: ${dir}/metrics.jsonl is a file, not a folder; set --cache-dir (or ALEXNET_CACHE_DIR) to a writable folder`],
    // the run was trained on synthetic images: CIFAR-10's classes are not its outputs' meaning
    [['launch', '--backend', 'webasm', '--resume', dir, '--data', 'cifar10'], 'alexnet: --data cifar10: the run was trained on generated (synthetic) images, this data set has 10 classes (airplane, automobile, bird, cat, ...): resume it on the data it was trained on, or start a new run'],
  ] as const) {
    const p = alexnet([...args]);
    t.is((await p.exited).code, 2, p.output());
    t.deepEqual(p.stderr, [line], 'one line, no process started');
  }
  // a resumed run already at --steps: nothing to train, and nothing started
  const done = alexnet(['launch', '--backend', 'webasm', '--resume', dir, '--steps', '2']);
  t.is((await done.exited).code, 0, done.output());
  t.deepEqual(done.stderr, [`[launch] nothing to do: the run in ${dir} is at step 2, and --steps 2 counts from its start (give more to train on)`]);
  const finished = alexnet(['launch', '--backend', 'webasm', '--resume', dir]);
  t.is((await finished.exited).code, 0, finished.output());
  t.deepEqual(finished.stderr, [`[launch] nothing to do: the run in ${dir} is at step 2, and its plan was 2 steps (give --steps to train on)`]);
  const checked = alexnet([...common, '--steps', '0', '--max-restarts', '-1']);
  t.is((await checked.exited).code, 2, 'the whole command line is checked first');
  const none = alexnet([...common, '--steps', '0']);
  t.is((await none.exited).code, 0, none.output());
  t.deepEqual(none.stderr, ['[launch] nothing to do: --steps 0']);
});

test('a resumed run trained by epochs and already at its epochs: nothing to do, said before any process starts, and nothing added to its metrics; --steps alone past them is refused', async (t) => {
  const dir = tempDir(t);
  // synthetic data: 1024 images an epoch, 16 steps of 64
  const first = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '64', '--epochs', '1', '--run-dir', dir]);
  t.is((await first.exited).code, 0, first.output());
  const before = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
  const finished = alexnet(['launch', '--backend', 'webasm', '--resume', dir]);
  t.is((await finished.exited).code, 0, finished.output());
  t.deepEqual(finished.stderr, [`[launch] nothing to do: the run in ${dir} is at step 16, and its plan was 1 epoch, 16 steps (give --epochs or --steps to train on)`]);
  const fewer = alexnet(['launch', '--backend', 'webasm', '--resume', dir, '--epochs', '1']);
  t.is((await fewer.exited).code, 0, fewer.output());
  t.deepEqual(fewer.stderr, [`[launch] nothing to do: the run in ${dir} is at step 16, and --epochs 1 counts from its start (to step 16: 1 epoch of 16 steps; give more to train on)`]);
  t.is(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'), before, 'no session added');
  // --steps alone past the planned epochs: refused before anything starts, saying the --epochs that reaches it
  const further = alexnet(['launch', '--backend', 'webasm', '--resume', dir, '--steps', '18']);
  t.is((await further.exited).code, 2, further.output());
  t.deepEqual(further.stderr, ['alexnet: --steps 18: the run\'s plan of 1 epoch (16 steps each) ends it at step 16: give --epochs 2 as well to train on to step 18']);
  t.is(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'), before, 'no session added');
});

test('options that keep something, without --run-dir, evaluation options without an evaluation and a schedule\'s drops past the run\'s end are warned about: the run still trains', async (t) => {
  const p = alexnet([...common, '--steps', '2', '--checkpoint-every', '1', '--eval-batch', '7', '--eval-batches', '2']);
  t.is((await p.exited).code, 0, p.output());
  t.regex(p.output(), /alexnet coordinator: warning: this run has no --run-dir: --checkpoint-every 1 writes nothing \(give --run-dir DIR for checkpoints, metrics\.jsonl and --resume\)/);
  t.regex(p.output(), /alexnet coordinator: warning: --eval-batch, --eval-batches have nothing to do: this run does no evaluation \(give --eval-every N, or --epochs on a data set with a held-out split\)/);
  const plain = alexnet([...common, '--steps', '2']);
  t.is((await plain.exited).code, 0, plain.output());
  t.notRegex(plain.output(), /no --run-dir|nothing to do/, 'a short run on synthetic data is not warned about');
  // a schedule's drop at an epoch the run does not reach (synthetic data: 1024 images an epoch, 2 steps of 512)
  const late = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '512', '--epochs', '2', '--lr-schedule', 'steps:1,5']);
  t.is((await late.exited).code, 0, late.output());
  t.regex(late.output(), /alexnet coordinator: warning: --lr-schedule: the run ends at step 4 \(2 epochs of 2 steps\): the rate's drop at epoch 5 never comes/);
  // a plateau schedule in a run too short for its patience; one long enough is not warned about
  const short = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '512', '--epochs', '2', '--lr-schedule', 'plateau']);
  t.is((await short.exited).code, 0, short.output());
  t.regex(short.output(), /alexnet coordinator: warning: --lr-schedule plateau: the run ends at step 4 \(2 epochs of 2 steps\): the rate drops only after 3 epoch-end evaluations \(the first, then 2 without improvement\) with epochs still to train, so it never drops in this run/);
  const enough = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '512', '--epochs', '3', '--lr-schedule', 'plateau:1']);
  t.is((await enough.exited).code, 0, enough.output());
  t.notRegex(enough.output(), /never drops/);
});

test('checkpoints by wall time: --checkpoint-minutes writes one after the first step past the interval; the run folder records the interval', async (t) => {
  const dir = tempDir(t);
  // 1e-7 minutes (6 us): due after every step (steps not queued, so each is followed by the check), with
  // nothing by step count or epoch asked for; those for the time alone replace each other, --keep 2 others
  const p = alexnet([...common, '--steps', '6', '--keep', '2', '--no-queue-steps', '--checkpoint-minutes', '0.0000001', '--run-dir', dir]);
  t.is((await p.exited).code, 0, p.output());
  const written = events(dir).filter((e) => e.event === 'checkpoint').map((e) => e.step);
  t.deepEqual(written, [1, 2, 3, 4, 5, 6]);
  // the last step's checkpoint is by steps (the run's end); the one by time before it is replaced
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')).sort(), ['step-000000006.safetensors']);
  // with checkpoints by steps as well: those by time do not push them out of --keep
  const mixed = tempDir(t);
  const m = alexnet([...common, '--steps', '6', '--keep', '2', '--checkpoint-every', '2', '--no-queue-steps', '--checkpoint-minutes', '0.0000001', '--run-dir', mixed]);
  t.is((await m.exited).code, 0, m.output());
  t.deepEqual(events(mixed).filter((e) => e.event === 'checkpoint').map((e) => e.step), [1, 2, 3, 4, 5, 6]);
  t.deepEqual(fs.readdirSync(path.join(mixed, 'checkpoints')).sort(), ['step-000000004.safetensors', 'step-000000006.safetensors']);
  const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { checkpoints: { minutes: number } };
  t.is(run.checkpoints.minutes, 0.0000001);
  const plain = tempDir(t);
  const q = alexnet([...common, '--steps', '6', '--run-dir', plain]);
  t.is((await q.exited).code, 0, q.output());
  t.deepEqual(events(plain).filter((e) => e.event === 'checkpoint').map((e) => e.step), [6], 'the default 30 minutes: the last step only, in a short run');
  t.is((JSON.parse(fs.readFileSync(path.join(plain, 'run.json'), 'utf8')) as { checkpoints: { minutes: number } }).checkpoints.minutes, 30);
});

test('a run resumed from a checkpoint written for the time alone replaces it with its next one (it does not count against --keep)', async (t) => {
  const dir = tempDir(t);
  // every step is followed by a checkpoint for the time alone; the stop (once one is written) writes none: one was
  // just written
  const p = alexnet([...common, '--steps', '100000', '--no-queue-steps', '--checkpoint-minutes', '0.0000001', '--run-dir', dir]);
  await p.waitFor(/"event":"checkpoint"/, 120_000);
  p.proc.kill('SIGINT');
  t.is((await p.exited).code, 130, p.output());
  const ckDir = path.join(dir, 'checkpoints');
  t.true(fs.existsSync(ckDir), p.output());
  const left = fs.readdirSync(ckDir);
  t.is(left.length, 1, left.join(' '));
  const file = path.join(ckDir, left[0]!);
  t.true(readCheckpointHeader(file).state.extra?.by_time, 'the checkpoint says it was written for the time alone');
  const step = stepOfFile(file)!;
  const r = alexnet([...common, '--resume', dir, '--steps', String(step + 1), '--keep', '2', '--checkpoint-minutes', '30']);
  t.is((await r.exited).code, 0, r.output());
  t.deepEqual(fs.readdirSync(ckDir), [`step-${String(step + 1).padStart(9, '0')}.safetensors`], 'the one by time is replaced, though --keep 2 would keep it');
  t.falsy(readCheckpointHeader(path.join(ckDir, fs.readdirSync(ckDir)[0]!)).state.extra?.by_time);
});

test('stray temporary files of a run killed mid-write are removed at the start', async (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'checkpoints'));
  const stray = [path.join(dir, 'checkpoints', '.step-000000005.safetensors.999999.tmp'), path.join(dir, '.run.json.999998.tmp')];
  for (const f of stray) fs.writeFileSync(f, 'half a file');
  const p = alexnet([...common, '--steps', '1', '--run-dir', dir]);
  t.is((await p.exited).code, 0, p.output());
  t.regex(p.output(), /removed 2 temporary files left by a run killed mid-write/);
  for (const f of stray) t.false(fs.existsSync(f), f);
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')), ['step-000000001.safetensors']);
});

test('a run directory that cannot be made is one line naming it and why, exit 2, at once: under /proc, under a file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const cases: [string, RegExp][] = [
    ['/proc/alexnet-run', /^alexnet: cannot make the run directory \/proc\/alexnet-run: no such file or folder \(ENOENT\)$/],
    [path.join(file, 'run'), /^alexnet: cannot make the run directory .*a-file\/run: a part of the path is a file, not a folder \(ENOTDIR\)$/],
    [file, /^alexnet: cannot make the run directory .*a-file: .*a-file is a file, not a folder$/],
  ];
  for (const [runDir, want] of cases) {
    for (const args of [[...common, '--steps', '1', '--run-dir', runDir], ['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--run-dir', runDir]]) {
      const t0 = Date.now();
      const p = alexnet(args);
      const { code } = await p.exited;
      t.is(code, 2, p.output());
      // the refusal comes at once; the bound is for a loaded 2-core machine running this file's other launches
      const took = Date.now() - t0;
      t.true(took < 150_000, `no endless retry (${took} ms)`);
      t.deepEqual(own(p).length, 1, p.output());
      t.regex(own(p)[0]!, want, args.join(' '));
      noStack(t, p);
    }
  }
});

(canMount ? test : test.skip)('a read-only run directory: one line naming it, exit 2, no worker left', async (t) => {
  const mnt = mountTmpfs(t, 'size=1m');
  if (!mnt) return t.fail('mount failed');
  fs.mkdirSync(path.join(mnt, 'run'));
  execFileSync('mount', ['-o', 'remount,ro', mnt]);
  for (const [runDir, want] of [
    [path.join(mnt, 'run'), /^alexnet: cannot write the lock file .*\/run\/run\.lock: read-only file system \(EROFS\)$/],
    [path.join(mnt, 'new'), /^alexnet: cannot make the run directory .*\/new: read-only file system \(EROFS\)$/],
  ] as const) {
    const p = alexnet([...common, '--steps', '1', '--run-dir', runDir]);
    t.is((await p.exited).code, 2, p.output());
    t.is(own(p).length, 1, p.output());
    t.regex(own(p)[0]!, want);
    noStack(t, p);
  }
});

(canMount ? test : test.skip)('a disk that fills mid-run under launch: one line naming the file and the reason, exit 2, every process gone, the checkpoints written intact', async (t) => {
  // 300 KiB: a few of tiny's 55 KB checkpoints, then no space
  const mnt = mountTmpfs(t, 'size=300k');
  if (!mnt) return t.fail('mount failed');
  const runDir = path.join(mnt, 'run');
  const p = alexnet([...common, '--steps', '200', '--checkpoint-every', '1', '--keep', '100', '--run-dir', runDir]);
  kill(t, p);
  const { code } = await p.exited;
  t.is(code, 2, p.output());
  noStack(t, p);
  const lines = p.stderr.filter((l) => /no space left on the device \(ENOSPC\)/.test(l));
  t.true(lines.length >= 1, p.output());
  t.regex(lines[0]!, new RegExp(`cannot write (checkpoint )?${runDir}/\\S+: no space left on the device \\(ENOSPC\\)`));
  for (const [name, pid] of Object.entries(childPids(p.stderr))) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
  // what was written verifies
  const v = alexnet(['verify', runDir]);
  t.is((await v.exited).code, 0, v.output());
  t.true(v.stdout.length >= 2 && v.stdout.every((l) => / ok$/.test(l)), v.output());
  t.false(fs.existsSync(path.join(runDir, 'run.lock')));
});

test("a log file launch cannot write ends the run: one line naming it, exit 2, no process left", async (t) => {
  const dir = tempDir(t);
  // worker0.log a link to a folder that does not exist: the launcher's log writer fails to open it (a folder of
  // that name is refused before anything starts: the run folder parts test)
  fs.symlinkSync(path.join(dir, 'no-such-folder', 'worker0.log'), path.join(dir, 'worker0.log'));
  const p = alexnet([...common, '--steps', '1', '--run-dir', dir]);
  const { code } = await p.exited;
  t.is(code, 2, p.output());
  noStack(t, p);
  t.true(p.stderr.some((l) => new RegExp(`^\\[launch\\] cannot write ${dir}/worker0\\.log: .*\\(ENOENT\\): stopping the run$`).test(l)), p.output());
  for (const [name, pid] of Object.entries(childPids(p.stderr))) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
});

const cifarFolder = path.resolve('../shared/datasets/cifar10');

(fs.existsSync(cifarFolder) ? test : test.skip)('a cache folder that cannot be made or has no room is one line naming it, exit 2: under /proc, under a file, a small tmpfs', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const mnt = canMount ? mountTmpfs(t, 'size=200k') : null;
  const cases: [string, RegExp][] = [
    ['/proc/alexnet-cache', /^alexnet: cannot make the cache folder \/proc\/alexnet-cache\/decoded: no such file or folder \(ENOENT\); set --cache-dir \(or ALEXNET_CACHE_DIR\) to a writable folder$/],
    [path.join(file, 'cache'), /^alexnet: cannot make the cache folder .*a-file\/cache\/decoded: a part of the path is a file, not a folder \(ENOTDIR\); set --cache-dir/],
  ];
  // a disk without room for the decoded images: refused before decoding, the room needed and free said (both splits
  // still to decode: the room for the two together)
  if (mnt) cases.push([path.join(mnt, 'cache'), /^alexnet: decoding the 60000 images of .*cifar10's training and test splits at 32x32 needs 184\.7 MB in .*\/cache\/decoded, which has [\d.]+ kB free: free space, or set --cache-dir \(or ALEXNET_CACHE_DIR\) to a folder on a larger disk$/]);
  for (const [cacheDir, want] of cases) {
    const p = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'cifar', '--data', cifarFolder, '--cache-dir', cacheDir]);
    t.is((await p.exited).code, 2, p.output());
    t.is(own(p).length, 1, p.output());
    t.regex(own(p)[0]!, want);
    noStack(t, p);
  }
  if (mnt) t.deepEqual(fs.readdirSync(path.join(mnt, 'cache', 'decoded')), [], 'nothing written');
});

test('run folder parts of the wrong kind (a file named checkpoints, a folder named metrics.jsonl or like a checkpoint): launch refuses before any process starts, the commands that read a run say it in one line', async (t) => {
  const dir = tempDir(t);
  const ckFile = path.join(dir, 'a');
  fs.mkdirSync(ckFile);
  fs.writeFileSync(path.join(ckFile, 'checkpoints'), 'x');
  const logFolder = path.join(dir, 'b');
  fs.mkdirSync(path.join(logFolder, 'metrics.jsonl'), { recursive: true });
  const ckFolder = path.join(dir, 'c');
  fs.mkdirSync(path.join(ckFolder, 'checkpoints', 'step-000000001.safetensors'), { recursive: true });
  const aFile = path.join(dir, 'afile.txt');
  fs.writeFileSync(aFile, 'x');
  for (const [args, line] of [
    [[...common, '--run-dir', ckFile], `alexnet: ${ckFile}/checkpoints is a file, not a folder: the run writes its checkpoints there; move the file away, or give another --run-dir`],
    [[...common, '--run-dir', ckFile, '--overwrite'], `alexnet: ${ckFile}/checkpoints is a file, not a folder: the run writes its checkpoints there; move the file away, or give another --run-dir`],
    [[...common, '--run-dir', logFolder], `alexnet: ${logFolder}/metrics.jsonl is a folder: the run writes its metrics.jsonl file there; move the folder away, or give another --run-dir`],
    [['export', '--run', ckFolder, '--out', path.join(dir, 'm.safetensors')], `alexnet: cannot read ${ckFolder}/checkpoints/step-000000001.safetensors: it is a folder (EISDIR)`],
    [['summary', aFile], `alexnet: ${aFile} is a file: give a run folder (--run-dir of a run)`],
    [['verify', ckFile], `alexnet: ${ckFile}: its checkpoints is a file, not the folder of its checkpoints`],
    [['params', '--model', dir], `alexnet: --model ${dir} is a folder: give a model file (.safetensors; a run's model file comes from alexnet export --run RUN_DIR, or give the run's --preset)`],
  ] as const) {
    const p = alexnet([...args]);
    t.is((await p.exited).code, 2, p.output());
    t.deepEqual(p.stderr, [line], `${args.join(' ')}: one line, no process started`);
  }
  t.deepEqual(fs.readdirSync(ckFile), ['checkpoints'], 'launch wrote nothing there');
});
