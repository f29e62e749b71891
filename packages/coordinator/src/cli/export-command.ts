/**
 * `alexnet export --run RUN_DIR [--step N] --out FILE.safetensors`: a run's checkpoint as a model file,
 * weights only (no momentum), under the checkpoint's PyTorch names and layout, with the preset, model hash,
 * class names, input mean and scale, the run and step, and the date in its metadata (core's model-file.ts;
 * docs/models.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import type { CommandModule } from 'yargs';
import { bytesInWords, firstFew } from '@alexnet-mp/core';
import { checkRunStep } from './options.js';
import { TrainedModel, writeModelFile } from '../trained-model.js';
import { checkOutputFile } from '../output-kinds.js';
import { COMMAND_LIST } from './command-list.js';


interface Args {
  run: string;
  step?: number;
  out: string;
  data?: string;
  'cache-dir'?: string;
}

export const exportCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['export'],
  builder: (y) =>
    y
      .options({
        run: { type: 'string', demandOption: true, describe: 'the run folder (--run-dir of the run): its latest checkpoint unless --step' },
        step: { type: 'number', describe: 'the checkpoint of this step (one the run kept: RUN_DIR/checkpoints/step-N)' },
        out: { type: 'string', demandOption: true, describe: 'the model file to write (.safetensors); an existing model file is replaced whole (any other file is refused)' },
        data: { type: 'string', describe: "where the run's data is, when its checkpoint predates saving the class names and input mean and the data has moved" },
        'cache-dir': { type: 'string', describe: 'the data cache folder (as for training), for such older checkpoints' },
      })
      .example('$0 export --run runs/c10 --out c10.safetensors', 'the latest checkpoint of runs/c10 as a model file')
      .example('$0 predict cat.jpg --model c10.safetensors', 'then use it') as never,
  handler: async (a) => {
    checkRunStep(a.step, a.run);
    // a run's checkpoint (with the momentum a resume needs) is never replaced by a model file
    // the example name is the run's (its folder's, when given as RUN_DIR/checkpoints)
    const run = path.resolve(a.run);
    checkOutputFile(a.out, '--out', `${path.basename(path.basename(run) === 'checkpoints' ? path.dirname(run) : run)}.safetensors`, 'model');
    // the file is safetensors whatever its name: another extension would promise a format it is not
    if (!/\.safetensors$/i.test(a.out)) {
      const ext = path.extname(a.out);
      throw new UserError(`--out ${a.out}: a model file is safetensors; name it ${ext ? a.out.slice(0, -ext.length) : a.out}.safetensors (NumPy, PyTorch and TensorFlow read it with the safetensors package: docs/models.md)`);
    }
    const model = TrainedModel.openRun(a.run, {
      step: a.step,
      data: a.data,
      cacheDir: a['cache-dir'],
      info: (l) => process.stderr.write(`alexnet export: ${l}\n`),
      // a model exported already is the file export would write
      modelHint: { give: (f) => `its model is ${f}, exported already`, giveAny: 'that file is its export already' },
    });
    const bytes = await model.encode();
    writeModelFile(a.out, bytes);
    const names = await model.classNames();
    const mean = await model.inputMean();
    process.stdout.write(
      `${a.out}: preset ${model.spec.name}, step ${model.step} of ${a.run}${model.runId ? ` (run ${model.runId})` : ''}, ${bytesInWords(fs.statSync(a.out).size)}, ` +
        `${names.length} classes (${firstFew(names, 4)}), input (pixel - [${mean.map((m) => m.toFixed(2)).join(', ')}]) / ${model.spec.inputScale}\n`,
    );
  },
};
