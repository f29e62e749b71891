/**
 * `alexnet features [--model FILE | --run RUN_DIR] --data cifar10|DIR --layer fc7 --out feats.npy`: a layer's
 * output for every held-out image, as NumPy arrays: FILE.npy float32 [images, values] (both towers' values
 * of an image in a row, features.ts), FILE.labels.npy int32 [images], and FILE.files.txt (an image file a
 * line) where the data set is a folder. For linear probes, t-SNE, nearest neighbours (docs/inspect.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { bytesInWords, checkBackendAvailable, freeBytes, type RequestedBackend } from '@alexnet-mp/core';
import { UserError } from './errors.js';
import { modelOptions, needsDataError, openModel, type ModelArgs } from './model-options.js';
import { positiveInt } from './options.js';
import { checkNotRunFile } from '../trained-model.js';
import { checkFeaturesOutput } from '../output-kinds.js';
import { openHeldOutFor, type TrainingData } from '../training-data.js';
import { featureBatches, featureLayout } from '../features.js';
import { NpyRowWriter, encodeNpy } from '../npy.js';
import { writeOutput } from '../inspect/png.js';
import { FEATURES_FORMAT, companionFiles, type FeatureFileMeta } from '../inspect/feature-file.js';
import { COMMAND_LIST } from './command-list.js';

interface Args extends Omit<ModelArgs, 'views'> {
  data?: string;
  layer: string;
  out: string;
  limit?: number;
  'cache-dir'?: string;
}

/** Refuses, before any work, a features file larger than the room left where it goes. */
function checkRoom(out: string, bytes: number): void {
  const free = freeBytes(path.dirname(path.resolve(out)));
  if (free !== null && bytes > free) throw new UserError(`--out ${out}: the features take ${bytesInWords(bytes)} and ${path.dirname(path.resolve(out))} has ${bytesInWords(free)} free: give --limit N, a smaller layer, or another folder`);
}


export const featuresCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['features'],
  builder: (y) =>
    y
      .options({
        model: modelOptions.model,
        run: modelOptions.run,
        step: modelOptions.step,
        backend: modelOptions.backend,
        data: { type: 'string', describe: "the data set whose held-out split (val/ or test/) to run: cifar10 or a folder (with no train/ folder: its val/ or test/, or its own class folders; default: a run's own; a model file needs it)" },
        layer: { type: 'string', default: 'fc7', describe: 'any layer of the preset: conv1, relu1, lrn1, pool1, ... fc8 (conv and fc layers after their ReLU)' },
        out: { type: 'string', demandOption: true, describe: 'the features file, FILE.npy: float32 [images, values]; beside it FILE.labels.npy (int32 [images]) and, for a folder data set, FILE.files.txt' },
        limit: { type: 'number', describe: 'N images spread evenly over the held-out split of a real data set (synthetic data: the first N; default all)' },
        'cache-dir': { type: 'string', describe: 'the data cache folder (as for training)' },
      })
      .example('$0 features --data cifar10 --out fc7.npy', "the shipped CIFAR-10 model's fc7 for the 10,000 test images")
      .example('$0 features --run runs/c10 --layer pool5 --limit 1000 --out pool5.npy', "a run's latest checkpoint, pool5, 1,000 held-out images spread over the split") as never,
  handler: async (a) => {
    if (!a.out.endsWith('.npy')) {
      // features.npy in a folder named; else the name given with .npy for its extension
      const suggested = /[\\/]$/.test(a.out) || a.out === '' ? path.join(a.out, 'features.npy') : `${a.out.replace(/(?<=[^/\\.])\.[^./\\]*$/, '')}.npy`;
      throw new UserError(`--out ${a.out}: give a file name ending in .npy, e.g. --out ${suggested} (its labels go beside it, in ${path.basename(companionFiles(suggested).labels)})`);
    }
    if (a.limit !== undefined) positiveInt(a.limit, 'limit');
    // the rows and the files beside them (FILE.labels.npy, FILE.files.txt, FILE.json)
    // its companions too: only an earlier features run's files are replaced (x.labels.npy beside an x.npy is that file's labels)
    checkFeaturesOutput(a.out, path.join(path.dirname(a.out), 'features.npy'));
    for (const f of Object.values(companionFiles(a.out))) checkNotRunFile(f, '--out', 'features.npy', `--out ${a.out}: its companion ${f}`);
    const info = (l: string) => process.stderr.write(`alexnet features: ${l}\n`);
    const model = openModel({ ...a, views: 'centre' }, { data: a.data, cacheDir: a['cache-dir'], info });
    const layout = featureLayout(model, a.layer);
    const dataName = model.dataName();
    if (dataName === null) throw needsDataError('features', 'the held-out images to run', a.model);
    // no GPU for --backend webgpu: said before the data set is decoded
    await checkBackendAvailable(a.backend as RequestedBackend);
    // opened before anything is decoded or computed: a file that cannot be written is said at once
    const writer = new NpyRowWriter(a.out, [layout.dim]);
    const labels: number[] = [];
    const indices: number[] = [];
    let done = false;
    let data: TrainingData | null = null;
    try {
      data = await openHeldOutFor(model, dataName, a['cache-dir'], info);
      const t0 = performance.now();
      let said = t0;
      const { count } = data.heldOutSubset(64, a.limit ?? Infinity);
      const bytes = count * layout.dim * 4;
      info(`${a.layer} of ${count} held-out images${a.limit !== undefined && count === a.limit && data.real ? ' (spread over the split)' : ''}: ${count} x ${layout.dim} floats, ${bytesInWords(bytes)}`);
      checkRoom(a.out, bytes);
      for await (const b of featureBatches(model, data, { layer: a.layer, backend: a.backend as RequestedBackend, limit: a.limit })) {
        writer.append(b.rows);
        for (const l of b.labels) labels.push(l);
        indices.push(...b.indices);
        if (performance.now() - said > 10_000) {
          said = performance.now();
          info(`${labels.length} images`);
        }
      }
      const { labels: labelsFile, files: filesFile, meta: metaFile } = companionFiles(a.out);
      // an earlier run's description goes before these rows take its place, and comes back last, theirs: a run
      // stopped in between leaves rows without a description, never described as another model's
      fs.rmSync(metaFile, { force: true });
      const shape = writer.close();
      done = true;
      writeOutput(labelsFile, encodeNpy(Int32Array.from(labels), [labels.length]));
      const files = data.heldOutFiles ? indices.map((i) => data!.heldOutFiles![i]!) : null;
      if (files) writeOutput(filesFile, Buffer.from(files.join('\n') + '\n'));
      // a companion of an earlier run on another data set would name the wrong images
      else fs.rmSync(filesFile, { force: true });
      // what the rows are, for inspect neighbours --features (and people)
      const meta: FeatureFileMeta = { format: FEATURES_FORMAT, version: 1, layer: a.layer, rows: shape[0]!, dim: layout.dim, model: model.description, weights: model.weightsDigest(), data: dataName, held_out: indices, classes: data.classes ? [...data.classes] : null };
      writeOutput(metaFile, Buffer.from(JSON.stringify(meta) + '\n'));
      const towers = layout.towers.length === 2 ? "tower 0's then tower 1's" : "tower 0's (tower 1 does not compute it)";
      const [C, H, W] = layout.map;
      info(`${model.description}, ${a.layer} of ${labels.length} held-out images of ${dataName === 'synthetic' ? 'the synthetic data' : dataName} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      process.stdout.write(
        `${a.out}: float32 [${shape.join(', ')}], a row per image: ${towers} ${C}${H * W > 1 ? ` maps ${H}x${W}` : ' units'}\n` +
          `${labelsFile}: int32 [${labels.length}], the class of each row\n` +
          (files ? `${filesFile}: the image file of each row\n` : '') +
          `${metaFile}: the layer, model and data set of the rows (inspect neighbours --features reads it)\n`,
      );
    } finally {
      if (!done) writer.abandon();
      await data?.close();
    }
  },
};
