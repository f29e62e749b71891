/**
 * A `--data` checked against the run before anything starts or decodes (launch, a hand-run coordinator, slurm's
 * coordinator step): its classes are listed, not decoded, and refused in one line when they are not a resumed
 * run's or outnumber the preset's outputs; evaluations asked of an image folder without a held-out split are
 * refused too (the coordinator would refuse them once its training split is decoded: hours, for ImageNet).
 */
import { getPreset, parseLrSchedule, presetNames, type LrScheduleSpec } from '@alexnet-mp/core';
import { CIFAR10_DOWNLOAD, checkDataLayout, defaultCacheDir, findCifarBinaryDir, heldOutSplitOf, makeCacheDir } from '@alexnet-mp/core/data';
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
  if (evaluations !== undefined && !(await hasHeldOutSplit(data))) {
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

/**
 * The cache folder real data is decoded (or CIFAR-10 downloaded) into can be made: a file there, or a path under
 * a file or in /proc, is refused in the coordinator's words before launch starts anything (made when missing, as
 * the coordinator would).
 */
export function checkCacheFolder(data: string | undefined, cacheDir: string | undefined): void {
  if (data === undefined || isGeneratedData(data)) return;
  makeCacheDir(cacheDir ?? defaultCacheDir());
}

/** Whether a data set has a held-out split: generated data and CIFAR-10 always; an image folder with val/ or test/ (as core's image-folder.ts decides). */
async function hasHeldOutSplit(data: string): Promise<boolean> {
  if (isGeneratedData(data) || data === CIFAR10_DOWNLOAD) return true;
  const abs = path.resolve(data);
  return findCifarBinaryDir(abs) !== null || (await heldOutSplitOf(abs)) !== null;
}

/** The option of a command line that asks for held-out evaluations (checkDataForRun's `evaluations`), if any. */
export function evaluationsAsked(a: { 'eval-every'?: number; 'lr-schedule'?: string }): string | undefined {
  if ((a['eval-every'] ?? 0) > 0) return `--eval-every ${a['eval-every']}`;
  const schedule = a['lr-schedule'];
  if (schedule !== undefined && scheduleKind(schedule) === 'plateau') return `--lr-schedule ${schedule}`;
  return undefined;
}

/** The kind of an --lr-schedule as core reads it; undefined for one it refuses (its own check says why). */
function scheduleKind(text: string): LrScheduleSpec['kind'] | undefined {
  try {
    return parseLrSchedule(text, 1).kind;
  } catch {
    return undefined;
  }
}
