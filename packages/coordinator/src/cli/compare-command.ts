/**
 * `alexnet compare A B`: two models of one preset, tensor by tensor (compare-models.ts). A and B are each a
 * model file (alexnet export), a run folder (its latest checkpoint) or a checkpoint file of a run
 * (RUN_DIR/checkpoints/step-N.safetensors).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { TrainedModel } from '../trained-model.js';
import { runOfCheckpointFile } from '../resume.js';
import { compareModels, formatComparison } from '../compare-models.js';
import { UserError } from './errors.js';
import { COMMAND_LIST } from './command-list.js';

interface Args {
  a: string;
  b: string;
  json: boolean;
}

/** A model file, a run folder's latest checkpoint, or a run's checkpoint file. */
export function openAny(what: string): TrainedModel {
  let isDir: boolean;
  try {
    isDir = fs.statSync(what).isDirectory();
  } catch {
    throw new UserError(`${what}: no such file or folder`);
  }
  if (isDir) {
    const anotherStep = (run: string) => `compare ${path.join(run, 'checkpoints', 'step-N.safetensors')} for another`;
    return TrainedModel.openRun(what, { named: what, modelHint: { give: (f) => `compare ${f} in its place`, giveAny: 'compare that file in its place', anotherStep } });
  }
  const checkpoint = runOfCheckpointFile(what);
  if (checkpoint !== null) return TrainedModel.openRun(checkpoint.runDir, { step: checkpoint.step, named: checkpoint.runDir });
  try {
    return TrainedModel.openFile(what, { named: what });
  } catch (e) {
    // a checkpoint moved out of its run's checkpoints/ folder: say what compare takes
    if (e instanceof Error && /is a training checkpoint, not a model file/.test(e.message)) {
      throw new UserError(`${what} is a training checkpoint outside a run's checkpoints/ folder: give its run folder, or the file as RUN_DIR/checkpoints/step-N.safetensors`);
    }
    throw e;
  }
}

export const compareCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['compare'],
  builder: (y) =>
    y
      .positional('a', { type: 'string', demandOption: true, describe: 'a model file, a run folder (its latest checkpoint) or a checkpoint file (RUN_DIR/checkpoints/step-N.safetensors)' })
      .positional('b', { type: 'string', demandOption: true, describe: 'the same, for the other model' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object: preset, a, b, tensors [{layer, tensor, tower, values, norm_a, norm_b, norm_diff, relative, cosine}], colour' })
      .example('$0 compare runs/c10/checkpoints/step-000001000.safetensors runs/c10', 'how far the weights moved from step 1000 to the latest checkpoint')
      .example('$0 compare models/cifar10.safetensors mine.safetensors', 'two trained models') as never,
  handler: (a) => {
    const c = compareModels(openAny(a.a), openAny(a.b));
    process.stdout.write(a.json ? JSON.stringify(c) + '\n' : formatComparison(c));
  },
};
