/**
 * `alexnet predict IMAGE... [--model FILE | --run RUN_DIR]`: each image's top-5 classes with their
 * probabilities, from a model file (default: the shipped models/cifar10.safetensors) or a run's latest
 * checkpoint. Both towers run in this process, as the one-process trainer runs them: no worker is
 * started. See docs/models.md.
 */
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { backendChoices, type RequestedBackend } from '@alexnet-mp/core';
import { UserError } from './errors.js';
import { checkRunStep } from './options.js';
import { DEFAULT_MODEL_FILE, TrainedModel } from '../trained-model.js';
import { formatPrediction, predictImages } from '../predict.js';

interface Args {
  images: string[];
  model?: string;
  run?: string;
  step?: number;
  views: 'centre' | 'center' | 'ten';
  json: boolean;
  backend: string;
  'cache-dir'?: string;
}

/** The default model as a path relative to the working directory when it is below it (messages stay short). */
const shown = (file: string): string => {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
};

export const predictCommand: CommandModule<object, Args> = {
  command: 'predict <images..>',
  describe:
    "the top-5 classes of image files (JPEG, PNG; any size: resized and centre-cropped as evaluation does) with their probabilities, from a model file or a run's checkpoint. " +
    'Both towers run in this one process (as the one-process trainer runs them): no worker is started',
  builder: (y) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true, describe: 'image files' })
      .options({
        model: { type: 'string', describe: `a model file (alexnet export); default ${shown(DEFAULT_MODEL_FILE)}, the shipped CIFAR-10 model, when neither --model nor --run is given` },
        run: { type: 'string', describe: 'a run folder: its latest checkpoint unless --step' },
        step: { type: 'number', describe: 'with --run: the checkpoint of this step (one the run kept: RUN_DIR/checkpoints/step-N)' },
        views: { choices: ['centre', 'center', 'ten'] as const, default: 'centre' as const, describe: "the centre crop, or the paper's ten patches (corners, centre and their mirror images) with their softmax averaged" },
        json: { type: 'boolean', default: false, describe: 'one JSON object a line per image: {"image", "top": [{"class", "name", "p"}, ...]}' },
        backend: { choices: backendChoices, default: 'auto', describe: 'the gpu.js mode: auto is webgpu on a GPU, else webasm' },
        'cache-dir': { type: 'string', describe: "with --run: the data cache folder, for checkpoints that predate saving the input mean" },
      })
      .example('$0 predict cat.jpg ship.png', 'top-5 CIFAR-10 classes of two images (the shipped model)')
      .example('$0 predict photos/*.jpg --run runs/c10 --views ten --json', "a run's latest checkpoint, ten patches, JSON lines") as never,
  handler: async (a) => {
    if (a.model !== undefined && a.run !== undefined) throw new UserError('give --model FILE or --run RUN_DIR, not both');
    checkRunStep(a.step, a.run);
    const info = (l: string) => process.stderr.write(`alexnet predict: ${l}\n`);
    const model =
      a.run !== undefined ? TrainedModel.openRun(a.run, { step: a.step, cacheDir: a['cache-dir'], info }) : TrainedModel.openFile(a.model ?? shown(DEFAULT_MODEL_FILE), { info });
    const views = a.views === 'ten' ? 'ten' : 'centre';
    const { results, modes } = await predictImages(model, a.images.map(String), { views, backend: a.backend as RequestedBackend });
    const classified = results.some((r) => !('error' in r));
    if (classified) info(`${model.description}, ${views === 'ten' ? 'ten patches' : 'centre crop'} of ${model.spec.inputSize}x${model.spec.inputSize}; both towers in this process (${modes.join(', ')})`);
    let unreadable = 0;
    for (const r of results) {
      if ('error' in r) {
        // the rest are still classified; the exit status says that some were not
        unreadable++;
        process.stderr.write(`alexnet: ${r.error}\n`);
        if (a.json) process.stdout.write(JSON.stringify({ image: r.image, error: r.error }) + '\n');
        continue;
      }
      process.stdout.write((a.json ? JSON.stringify({ image: r.image, top: r.top }) : formatPrediction(r)) + '\n');
    }
    if (unreadable > 0) {
      // one file: its line says it all
      if (results.length > 1) info(classified ? `${unreadable} of ${results.length} files could not be read (above); the others are classified` : `none of the ${results.length} files could be read (above)`);
      process.exitCode = 2;
    }
  },
};
