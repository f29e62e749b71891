/**
 * A `--data` checked against the run before anything starts or decodes (launch, a hand-run coordinator, slurm's
 * coordinator step): its classes are listed, not decoded, and refused in one line when they are not a resumed
 * run's or outnumber the preset's outputs.
 */
import { getPreset, presetNames } from '@alexnet-mp/core';
import { checkDataLayout } from '@alexnet-mp/core/data';
import { checkResumedClasses, type SavedRun } from '../resume.js';
import { isGeneratedData } from '../training-data.js';
import { classNamesOfData } from '../trained-model.js';
import { UserError } from './errors.js';

/** `saved`: the resumed run's state (null: a new run); `preset`: the run's preset name. */
export async function checkDataForRun(data: string | undefined, saved: SavedRun | null, preset: string): Promise<void> {
  if (data === undefined) return;
  // a folder that is missing or not a data set is said in core's words (what it expected there) first
  if (!isGeneratedData(data)) checkDataLayout(data);
  const classes = await classNamesOfData(data);
  if (saved !== null) checkResumedClasses(saved, classes, data);
  const outputs = getPreset(preset).classes;
  if (classes !== null && classes.length > outputs) {
    const enough = presetNames.filter((p) => getPreset(p).classes >= classes.length);
    throw new UserError(`--data ${data} has ${classes.length} classes but preset ${preset} has ${outputs} outputs${enough.length > 0 ? `: give --preset ${enough.join(' or ')}` : ''}`);
  }
}
