/**
 * `alexnet evaluate [--model FILE | --run RUN_DIR] --data cifar10|DIR`: a trained model on a data set's whole
 * held-out split, in this process (no worker): top-1 and top-5 error and loss, per class, the confusion matrix,
 * and with `--wrong FILE` every misclassified image as a JSON line. See docs/models.md.
 */
import fs from 'node:fs';
import type { CommandModule } from 'yargs';
import { checkBackendAvailable, fileError, tempBeside, type RequestedBackend } from '@alexnet-mp/core';
import { modelOptions, needsDataError, openModel, type ModelArgs } from './model-options.js';
import { checkOutputFile } from '../output-kinds.js';
import { outputTarget, removeOnSignal, standardStream } from '../temp-files.js';
import { checkViewsOfData, isGeneratedData, openHeldOutFor } from '../training-data.js';
import { evaluateModel, formatEvaluation } from '../evaluate-model.js';
import { COMMAND_LIST } from './command-list.js';

interface Args extends ModelArgs {
  data?: string;
  json: boolean;
  wrong?: string;
  'cache-dir'?: string;
}


export const evaluateCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['evaluate'],
  builder: (y) =>
    y
      .options({
        ...modelOptions,
        data: { type: 'string', describe: "the data set whose held-out split (val/ or test/) to evaluate on: cifar10 or a folder (with no train/ folder: its val/ or test/, or its own class folders; default: a run's own; a model file needs it)" },
        json: { type: 'boolean', default: false, describe: 'the report as one JSON object: images, loss, top1_error, top5_error, classes, per_class, confusion' },
        wrong: { type: 'string', describe: 'write every misclassified image to this file, a JSON line each: {"index", "file", "label", "name", "top": [{"class", "name", "p"}, ...]}' },
        'cache-dir': { type: 'string', describe: 'the data cache folder (as for training)' },
      })
      .example('$0 evaluate --data cifar10', 'the shipped CIFAR-10 model on the 10,000 test images')
      .example('$0 evaluate --run runs/c10 --views ten --wrong wrong.jsonl', "a run's latest checkpoint, ten patches, the misclassified images listed") as never,
  handler: async (a) => {
    // a temporary file beside it (beside a link's target), opened before anything is decoded or computed (a file
    // that cannot be written is said at once) and renamed to it at the end: an evaluation that fails leaves --wrong
    // as it was. A device or a pipe (--wrong /dev/stdout) is written to as the evaluation goes
    const target = a.wrong !== undefined ? outputTarget(a.wrong) : null;
    if (target !== null && !target.special) {
      // a list this command wrote before may be replaced; a model, an image or anything else given by mistake not
      checkOutputFile(a.wrong!, '--wrong', 'wrong.jsonl', 'wrongList');
    }
    const tmp = target !== null && !target.special ? tempBeside(target.file) : null;
    const own = target !== null && tmp === null ? standardStream(target.file) : null;
    const wrong = target === null ? null : (own ?? openForWriting(tmp ?? target.file, a.wrong!, tmp === null));
    // a signal (Ctrl-C) ends the process without the finally below: the temporary file goes with it (temp-files.ts)
    const kept = tmp !== null ? removeOnSignal(tmp) : () => {};
    const info = (l: string) => process.stderr.write(`alexnet evaluate: ${l}\n`);
    let done = false;
    try {
      await evaluateCommandBody(a, info, wrong);
      done = true;
    } finally {
      if (wrong !== null && own === null) fs.closeSync(wrong);
      if (tmp !== null && done) {
        try {
          fs.renameSync(tmp, target!.file);
          if (target!.mode !== null) fs.chmodSync(target!.file, target!.mode);
        } catch (e) {
          fs.rmSync(tmp, { force: true });
          throw fileError('write', a.wrong!, e);
        }
      } else if (tmp !== null) fs.rmSync(tmp, { force: true });
      kept();
    }
  },
};

/** `append`: a device or a pipe (/dev/stdout), written at its end as the evaluation goes, never truncated. */
function openForWriting(tmp: string, file: string, append = false): number {
  try {
    return fs.openSync(tmp, append ? 'a' : 'w');
  } catch (e) {
    throw fileError('write', file, e);
  }
}

/** The evaluation itself, its misclassified images written to `wrong` (a file descriptor) when given. */
async function evaluateCommandBody(a: Args, info: (l: string) => void, wrong: number | null): Promise<void> {
  const model = openModel(a, { data: a.data, cacheDir: a['cache-dir'], info });
  const dataName = model.dataName();
  if (dataName === null) throw needsDataError('evaluate', 'the held-out images to evaluate on', a.model);
  const views = a.views === 'ten' ? 'ten' : 'centre';
  checkViewsOfData(views, !isGeneratedData(dataName), '--views');
  // no GPU for --backend webgpu: said before the data set is decoded (hours, for ImageNet)
  await checkBackendAvailable(a.backend as RequestedBackend);
  const data = await openHeldOutFor(model, dataName, a['cache-dir'], info);
  let last = performance.now();
  try {
    const t0 = performance.now();
    const { report, modes } = await evaluateModel(model, data, {
      views,
      backend: a.backend as RequestedBackend,
      onWrong:
        wrong === null
          ? undefined
          : (m) => {
              try {
                fs.writeSync(wrong, JSON.stringify(m) + '\n');
              } catch (e) {
                throw fileError('write', a.wrong!, e);
              }
            },
      onProgress: (done, total) => {
        if (performance.now() - last < 10_000) return;
        last = performance.now();
        info(total === undefined ? `${done} images so far` : `${done} of ${total} images`);
      },
    });
    info(`${model.description} on ${dataName}, ${report.images} images in ${((performance.now() - t0) / 1000).toFixed(1)} s; both towers in this process (${modes.join(', ')})`);
    process.stdout.write(a.json ? JSON.stringify(report) + '\n' : formatEvaluation(report));
    if (a.wrong !== undefined) info(`${report.confusion.reduce((s, row, c) => s + row.reduce((x, v) => x + v, 0) - row[c]!, 0)} misclassified images listed in ${a.wrong}`);
  } finally {
    await data.close();
  }
}
