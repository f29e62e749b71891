/** `alexnet verify RUN_DIR|FILE`: each checkpoint's step and whether it is sound (checksums, structure, values). */
import fs from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { listCheckpoints, verifyFile, type FileVerdict } from '@alexnet-mp/core';
import { checkpointDir } from '../resume.js';
import { noCheckpointHint } from '../trained-model.js';
import { UserError } from './errors.js';
import { COMMAND_LIST } from './command-list.js';

interface Args {
  target: string;
  json: boolean;
}

/** The files to verify: a file itself; a run folder's checkpoints; a checkpoint folder's. `aside`: those set aside as damaged by --resume. */
export function filesToVerify(target: string): { files: string[]; aside: string[] } {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    throw new UserError(`${target}: no such file or folder`);
  }
  if (!st.isDirectory()) return { files: [target], aside: [] };
  // a run folder's checkpoints are in its checkpoints/ (said so even before it has one)
  const isRun = fs.existsSync(path.join(target, 'run.json')) || fs.existsSync(path.join(target, 'metrics.jsonl'));
  const dir = fs.existsSync(checkpointDir(target)) || isRun ? checkpointDir(target) : target;
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UserError(`${target}: its ${path.basename(dir)} is a file, not the folder of its checkpoints`);
  const aside = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter((f) => /^step-\d{9}\.safetensors\.damaged$/.test(f)).map((f) => path.join(dir, f));
  const files = listCheckpoints(dir);
  if (files.length === 0) {
    // a run folder: why it may have none (a finished run keeps its exported model instead)
    const hint = isRun ? `; ${noCheckpointHint(target, { give: (f) => `alexnet verify ${f}`, giveAny: 'verify that file' })}` : '';
    throw new UserError(`${target}: no checkpoint in ${dir} (step-NNNNNNNNN.safetensors)${aside.length ? `; ${aside.length} set aside as damaged` : ''}${hint}`);
  }
  return { files, aside };
}

/** One line per file: name, step, state. */
export function verdictLine(v: FileVerdict): string {
  // a file that cannot be read says its step by its name
  const byName = /^step-(\d{9})\.safetensors/.exec(path.basename(v.file));
  const step = v.step !== undefined ? `step ${v.step}` : byName ? `step ${Number(byName[1])}` : 'step not read';
  const state = v.state === 'ok' ? 'ok' : v.state === 'unverified' ? 'ok, no checksums (written by an older version or another program: structure and values checked)' : `FAILED: ${v.problem}`;
  return `${path.basename(v.file)}  ${v.kind ?? (byName ? 'checkpoint' : 'model or checkpoint')}  ${step}  ${state}`;
}

export const verifyCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['verify'],
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'a run folder (--run-dir of the run), its checkpoints/ folder, or one .safetensors file' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per file instead' })
      .usage('$0 verify RUN_DIR|FILE\n\nOne line per file: its name, kind, step and state (ok, or FAILED and what is wrong). Exit code 0 when every file is sound, 1 when one is not, 2 when there is nothing to check.')
      .example('$0 verify runs/c10', "every checkpoint of the run, oldest first")
      .example('$0 verify models/cifar10.safetensors', 'a model file') as never,
  handler: (a) => {
    const { files, aside } = filesToVerify(a.target);
    const verdicts = files.map(verifyFile);
    for (const v of verdicts) process.stdout.write((a.json ? JSON.stringify(v) : verdictLine(v)) + '\n');
    if (aside.length > 0) process.stderr.write(`alexnet verify: ${aside.length} checkpoint${aside.length === 1 ? '' : 's'} set aside as damaged by --resume, not checked: ${aside.map((f) => path.basename(f)).join(', ')}\n`);
    process.exitCode = verdicts.some((v) => v.state === 'failed') ? 1 : 0;
  },
};
