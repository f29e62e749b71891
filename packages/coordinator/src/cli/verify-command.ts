/** `alexnet verify RUN_DIR|FILE`: each checkpoint's step and whether it is sound (checksums, structure, values). */
import fs from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { listCheckpoints, verifyFile, type FileVerdict } from '@alexnet-mp/core';
import { checkpointDir } from '../resume.js';
import { UserError } from './errors.js';

interface Args {
  target: string;
  json: boolean;
}

/** The files to verify: a file itself; a run folder's checkpoints (and those set aside as damaged); a checkpoint folder's. */
export function filesToVerify(target: string): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    throw new UserError(`${target}: no such file or folder`);
  }
  if (!st.isDirectory()) return [target];
  const dir = fs.existsSync(checkpointDir(target)) ? checkpointDir(target) : target;
  const aside = fs.readdirSync(dir).filter((f) => /^step-\d{9}\.safetensors\.damaged$/.test(f)).map((f) => path.join(dir, f));
  const files = [...listCheckpoints(dir), ...aside].sort();
  if (files.length === 0) throw new UserError(`${target}: no checkpoint in ${dir} (step-NNNNNNNNN.safetensors)`);
  return files;
}

/** One line per file: name, step, state. */
export function verdictLine(v: FileVerdict): string {
  // a file that cannot be read says its step by its name
  const byName = /^step-(\d{9})\.safetensors/.exec(path.basename(v.file));
  const step = v.step !== undefined ? `step ${v.step}` : byName ? `step ${Number(byName[1])}` : 'step ?';
  const state = v.state === 'ok' ? 'ok' : v.state === 'unverified' ? 'ok, no checksums (written by an older version: structure and values checked)' : `FAILED: ${v.problem}`;
  return `${path.basename(v.file)}  ${v.kind ?? (byName ? 'checkpoint' : 'file')}  ${step}  ${state}`;
}

export const verifyCommand: CommandModule<object, Args> = {
  command: 'verify <target>',
  describe: "check a run's checkpoints (or one checkpoint or model file): each one's step and whether it is sound (checksums of its header and every tensor, structure, finite values)",
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'a run folder (--run-dir of the run), its checkpoints/ folder, or one .safetensors file' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per file instead' })
      .usage('$0 verify RUN_DIR|FILE\n\nExit code 0 when every file is sound, 1 when one is not, 2 when there is nothing to check.')
      .example('$0 verify runs/c10', "every checkpoint of the run, oldest first")
      .example('$0 verify models/cifar10.safetensors', 'a model file') as never,
  handler: (a) => {
    const verdicts = filesToVerify(a.target).map(verifyFile);
    for (const v of verdicts) process.stdout.write((a.json ? JSON.stringify(v) : verdictLine(v)) + '\n');
    process.exitCode = verdicts.some((v) => v.state === 'failed') ? 1 : 0;
  },
};
