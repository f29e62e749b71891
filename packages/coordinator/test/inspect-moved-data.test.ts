/** `inspect --run` of a run whose data folder is not where --data pointed from here: it uses the saved absolute path and says so. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeCheckpoint, getPreset, initTowerParams, writeCheckpointFile } from '@alexnet-mp/core';
import { gradientImage, writeFile } from '../../core/test/data-fixtures.js';
import { CheckpointSource } from '../src/inspect/source.js';
import { checkpointDir } from '../src/resume.js';

test('predictions of a checkpoint whose relative --data does not resolve from here come from its saved folder, with a note', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-inspect-moved-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const data = path.join(root, 'data');
  const colours: [number, number, number][] = [[250, 40, 40], [40, 250, 40]];
  for (const [c, rgb] of colours.entries()) {
    writeFile(path.join(data, 'train', `c${c}`, '0.png'), await gradientImage(16, 16, rgb, 'png'));
    writeFile(path.join(data, 'val', `c${c}`, '0.png'), await gradientImage(16, 16, rgb, 'png'));
  }
  const spec = getPreset('tiny');
  const relative = path.join('no-such-folder-from-here', 'data');
  const state = { step: 5, seed: 3, preset: spec.name, extra: { data_name: relative, data_path: data, input_mean: null } };
  const runDir = path.join(root, 'run');
  writeCheckpointFile(checkpointDir(runDir), 5, encodeCheckpoint(spec, [initTowerParams(spec, 0, 3), initTowerParams(spec, 1, 3)], state), 1);

  const lines: string[] = [];
  const src = CheckpointSource.open(runDir, { backend: 'webasm', cacheDir: path.join(root, 'cache'), info: (l) => lines.push(l) });
  t.teardown(() => src.close());
  const p = await src.predictions(2);
  t.deepEqual([...p.labels], [0, 1]);
  t.deepEqual(p.classNames, ['c0', 'c1']);
  t.is(p.logits.length, 2 * spec.classes);
  const notes = lines.filter((l) => l.includes('is not there from'));
  t.is(notes.length, 1, lines.join('\n'));
  t.true(notes[0]!.includes(`using ${data}`), notes[0]);
  await src.predictions(1);
  t.is(lines.filter((l) => l.includes('is not there from')).length, 1, 'said once');
});
