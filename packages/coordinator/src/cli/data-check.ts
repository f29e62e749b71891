/**
 * A `--data` checked against the run before anything starts or decodes (launch, a hand-run coordinator, slurm's
 * coordinator step): its classes are listed, not decoded, and refused in one line when they are not a resumed
 * run's or outnumber the preset's outputs; evaluations asked of an image folder without a held-out split are
 * refused too (the coordinator would refuse them once its training split is decoded: hours, for ImageNet).
 */
import { getPreset, presetNames } from '@alexnet-mp/core';
import { CIFAR10_DOWNLOAD, checkDataLayout, findCifarBinaryDir } from '@alexnet-mp/core/data';
import { statSync } from 'node:fs';
import path from 'node:path';
import { checkResumedClasses, type SavedRun } from '../resume.js';
import { isGeneratedData } from '../training-data.js';
import { classNamesOfData } from '../trained-model.js';
import { UserError } from './errors.js';

/**
 * `saved`: the resumed run's state (null: a new run); `preset`: the run's preset name; `evaluations`: the option
 * that asks for held-out evaluations, as given ("--eval-every 5", "--lr-schedule plateau"), if any.
 */
export async function checkDataForRun(data: string | undefined, saved: SavedRun | null, preset: string, evaluations?: string): Promise<void> {
  if (data === undefined) return;
  // a folder that is missing or not a data set is said in core's words (what it expected there) first
  if (!isGeneratedData(data)) checkDataLayout(data);
  if (evaluations !== undefined && !hasHeldOutSplit(data)) {
    throw new UserError(`${evaluations}: --data ${data} has no held-out split (val/ or test/) to evaluate on: add one, or leave ${evaluations.split(' ')[0]} out`);
  }
  const classes = await classNamesOfData(data);
  if (saved !== null) checkResumedClasses(saved, classes, data);
  const outputs = getPreset(preset).classes;
  if (classes !== null && classes.length > outputs) {
    const enough = presetNames.filter((p) => getPreset(p).classes >= classes.length);
    throw new UserError(`--data ${data} has ${classes.length} classes but preset ${preset} has ${outputs} outputs${enough.length > 0 ? `: give --preset ${enough.join(' or ')}` : ''}`);
  }
}

/** Whether a data set has a held-out split: generated data and CIFAR-10 always; an image folder with val/ or test/ (as core's image-folder.ts decides). */
function hasHeldOutSplit(data: string): boolean {
  if (isGeneratedData(data) || data === CIFAR10_DOWNLOAD) return true;
  const abs = path.resolve(data);
  if (findCifarBinaryDir(abs)) return true;
  return ['val', 'test'].some((split) => statSync(path.join(abs, split), { throwIfNoEntry: false })?.isDirectory() ?? false);
}

/** The option of a command line that asks for held-out evaluations (checkDataForRun's `evaluations`), if any. */
export function evaluationsAsked(a: { 'eval-every'?: number; 'lr-schedule'?: string }): string | undefined {
  if ((a['eval-every'] ?? 0) > 0) return `--eval-every ${a['eval-every']}`;
  if (a['lr-schedule']?.trim().startsWith('plateau')) return `--lr-schedule ${a['lr-schedule']}`;
  return undefined;
}
