/** The options that choose a trained model (predict, evaluate): a model file, or a run's checkpoint; the views and the gpu.js mode. */
import type { Options } from 'yargs';
import { backendChoices } from '@alexnet-mp/core';
import { UserError } from './errors.js';
import { checkRunStep } from './options.js';
import { DEFAULT_MODEL_FILE, TrainedModel, shownPath, type TrainedModelOptions } from '../trained-model.js';

export const modelOptions = {
  model: { type: 'string', describe: `a model file (alexnet export); default ${shownPath(DEFAULT_MODEL_FILE)}, the shipped CIFAR-10 model, when neither --model nor --run is given` },
  run: { type: 'string', describe: 'a run folder: its latest checkpoint unless --step' },
  step: { type: 'number', describe: 'with --run: the checkpoint of this step (one the run kept: RUN_DIR/checkpoints/step-N)' },
  views: { choices: ['centre', 'center', 'ten'] as const, default: 'centre' as const, describe: "each image's centre crop, or the paper's ten patches (corners, centre and their mirror images) with their softmax averaged" },
  backend: { choices: backendChoices, default: 'auto', describe: 'the gpu.js mode: auto is webgpu on a GPU, else webasm' },
} satisfies Record<string, Options>;

export interface ModelArgs {
  model?: string;
  run?: string;
  step?: number;
  views: 'centre' | 'center' | 'ten';
  backend: string;
}

/** The model the options name (checked: not both --model and --run, --step only with --run). */
export function openModel(a: ModelArgs, o: TrainedModelOptions): TrainedModel {
  if (a.model !== undefined && a.run !== undefined) throw new UserError('give --model FILE or --run RUN_DIR, not both');
  checkRunStep(a.step, a.run);
  return a.run !== undefined ? TrainedModel.openRun(a.run, { ...o, step: a.step }) : TrainedModel.openFile(a.model ?? shownPath(DEFAULT_MODEL_FILE), o);
}

/**
 * The refusal of a model file without --data: a model file keeps no data set. `what`: what the images are
 * for ("the held-out images to evaluate on"). Without --model, the file is the shipped one, and said so.
 */
export function needsDataError(command: string, what: string, model: string | undefined): UserError {
  return model !== undefined
    ? new UserError(`${command} --model needs --data (cifar10 or a folder): ${what}; a model file keeps no data set`)
    : new UserError(`${command} needs --data (cifar10 or a folder): ${what}; the shipped model, ${shownPath(DEFAULT_MODEL_FILE)}, keeps no data set (--run RUN_DIR takes the run's own)`);
}
