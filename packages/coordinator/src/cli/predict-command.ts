/**
 * `alexnet predict IMAGE... [--model FILE | --run RUN_DIR]`: each image's top-5 classes with their
 * probabilities, from a model file (default: the shipped models/cifar10.safetensors) or a run's latest
 * checkpoint. Both towers run in this process, as the one-process trainer runs them: no worker is
 * started. See docs/models.md.
 */
import type { CommandModule } from 'yargs';
import type { RequestedBackend } from '@alexnet-mp/core';
import { modelOptions, openModel, type ModelArgs } from './model-options.js';
import { UserError } from './errors.js';
import { formatPrediction, predictImages } from '../predict.js';
import { expandImageArgs } from '../image-args.js';
import { IMAGE_EXTENSIONS } from '@alexnet-mp/core/data';
import { COMMAND_LIST } from './command-list.js';

interface Args extends ModelArgs {
  images: string[];
  top: number;
  json: boolean;
  'cache-dir'?: string;
}


export const predictCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['predict'],
  builder: (y) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true, describe: `image files, or folders: the ${IMAGE_EXTENSIONS.slice(0, -1).join(', ')} and ${IMAGE_EXTENSIONS.at(-1)} files under them, sorted (after \`--\`, names that start with a dash)` })
      .options({
        ...modelOptions,
        top: { type: 'number', default: 5, describe: "classes given per image, most probable first (a number above the model's classes gives them all)" },
        json: { type: 'boolean', default: false, describe: 'one JSON object a line per image: {"image", "top": [{"class", "name", "p"}, ...]}' },
        'cache-dir': { type: 'string', describe: "with --run: the data cache folder, for checkpoints that predate saving the input mean" },
      })
      .example('$0 predict cat.jpg ship.png', 'top-5 CIFAR-10 classes of two images (the shipped model)')
      .example('$0 predict photos/ --top 1 --json', 'every image under photos/, its most probable class')
      .example('$0 predict photos/*.jpg --run runs/c10 --views ten --json', "a run's latest checkpoint, ten patches, JSON lines")
      .example('$0 predict -- -scan.jpg', 'a file whose name starts with a dash') as never,
  handler: async (a) => {
    const info = (l: string) => process.stderr.write(`alexnet predict: ${l}\n`);
    // a model file reads no data set: --cache-dir is for a run's older checkpoints only
    const model = openModel(a, { cacheDir: a.run !== undefined ? a['cache-dir'] : undefined, info });
    const views = a.views === 'ten' ? 'ten' : 'centre';
    if (!(Number.isInteger(a.top) && a.top >= 1)) throw new UserError(`--top must be an integer >= 1, got ${a.top}`);
    // a folder stands for the images under it
    const args = expandImageArgs(a.images.map(String));
    const files = args.flatMap((x) => ('file' in x ? [x.file] : []));
    const { results: done, modes } = await predictImages(model, files, { views, backend: a.backend as RequestedBackend, top: a.top });
    const predicted = done.values();
    const results = args.map((x) => ('file' in x ? predicted.next().value! : { image: x.folder, error: x.error }));
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
      if (results.length > 1) info(classified ? `${unreadable} of ${results.length} could not be read (above); the others are classified` : `none of the ${results.length} could be read (above)`);
      process.exitCode = 2;
    }
  },
};
