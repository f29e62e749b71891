/**
 * TensorBoard itself reads what `alexnet export-metrics --tensorboard` writes: its EventAccumulator (the reader
 * behind TensorBoard's scalar dashboard) loads the event file of a tiny run and finds every scalar at the
 * steps done of metrics.jsonl (a step line's index + 1). TensorBoard comes from PyPI into a private virtual environment under .cache/ (once);
 * where neither it nor PyPI is reachable, the test is skipped and says why (the file format is checked
 * without TensorBoard by export-metrics.test.ts).
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { alexnet } from './helpers.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const venv = path.join(root, '.cache', 'tensorboard-venv');
const python = path.join(venv, 'bin', 'python');

/** A python with tensorboard importable, or why there is none. */
function tensorboardPython(): { python: string } | { why: string } {
  const has = (py: string) => spawnSync(py, ['-c', 'import tensorboard'], { encoding: 'utf8' }).status === 0;
  if (fs.existsSync(python) && has(python)) return { python };
  const mk = spawnSync('python3', ['-m', 'venv', venv], { encoding: 'utf8', timeout: 120_000 });
  if (mk.status !== 0) return { why: `python3 -m venv failed: ${(mk.stderr || mk.error?.message || '').trim().split('\n').pop()}` };
  const pip = spawnSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', 'tensorboard'], { encoding: 'utf8', timeout: 300_000 });
  if (!has(python)) return { why: `pip install tensorboard failed: ${(pip.stderr || pip.error?.message || '').trim().split('\n').pop()}` };
  return { python };
}

const tb = tensorboardPython();
if ('why' in tb) console.log(`tensorboard-read: skipped, ${tb.why}`);

(('python' in tb ? test : test.skip) as typeof test)('TensorBoard reads the exported event file: every scalar at the run\'s steps', async (t) => {
  const py = (tb as { python: string }).python;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-tensorboard-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const runDir = path.join(dir, 'run');
  const launch = alexnet(['launch', '--steps', '6', '--eval-every', '3', '--run-dir', runDir]);
  t.is((await launch.exited).code, 0, launch.output());
  const out = alexnet(['export-metrics', runDir, '--tensorboard', path.join(dir, 'tb')]);
  t.is((await out.exited).code, 0, out.output());
  const script = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in ea.Scalars(tag)] for tag in ea.Tags()['scalars']}))
`;
  const r = spawnSync(py, ['-c', script, path.join(dir, 'tb')], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  const scalars = JSON.parse(r.stdout) as Record<string, [number, number][]>;
  const steps = fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event: string; step?: number; loss?: number })
    .filter((e) => e.event === 'step');
  t.is(steps.length, 6);
  t.deepEqual(
    scalars['train/loss']!.map(([s]) => s),
    steps.map((e) => e.step! + 1),
    'numbered by the steps done',
  );
  for (const [i, [, v]] of scalars['train/loss']!.entries()) t.is(v, Math.fround(steps[i]!.loss!), `train/loss at step ${i}`);
  for (const tag of ['train/top1_error', 'train/top5_error', 'train/learning_rate', 'train/images_per_s', 'train/exchange_share/tower0', 'train/exchange_share/tower1']) t.is(scalars[tag]?.length, 6, tag);
  for (const tag of ['eval/loss', 'eval/top1_error', 'eval/top5_error']) t.true((scalars[tag]?.length ?? 0) >= 2, tag);
  t.log(`TensorBoard's EventAccumulator read ${Object.keys(scalars).length} scalar tags`);
});
