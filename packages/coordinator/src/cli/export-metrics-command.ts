/** `alexnet export-metrics RUN_DIR (--tensorboard DIR | --csv FILE)`: a run's metrics.jsonl as a TensorBoard event file or a CSV. */
import type { CommandModule } from 'yargs';
import { checkNotRunFile } from '../trained-model.js';
import { checkOutputFile } from '../output-kinds.js';
import { outputTarget } from '../temp-files.js';
import { UserError } from './errors.js';
import { isStdout } from './output-gone.js';
import { runCsv, writeCsv, writeTensorBoard } from '../export-metrics.js';
import { COMMAND_LIST } from './command-list.js';

interface Args {
  run: string;
  tensorboard?: string;
  csv?: string;
}

export const exportMetricsCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['export-metrics'],
  builder: (y) =>
    y
      .positional('run', { type: 'string', demandOption: true, describe: 'the run folder (--run-dir of the run)' })
      .option('tensorboard', { type: 'string', describe: 'write an event file (events.out.tfevents.TIME.HOST) into this folder, for `tensorboard --logdir`' })
      .option('csv', { type: 'string', describe: 'write one row per step to this CSV file (/dev/stdout: the CSV alone on stdout)' })
      .example('$0 export-metrics runs/c10 --tensorboard tb/c10', 'then: tensorboard --logdir tb')
      .example('$0 export-metrics runs/c10 --csv c10.csv', 'a header row, then one row per step') as never,
  handler: (a) => {
    if (a.tensorboard === undefined && a.csv === undefined) throw new UserError('export-metrics: name an output, --tensorboard DIR or --csv FILE');
    // refused before anything is read: a run's own file, a folder, a missing or read-only folder (a device or a pipe,
    // /dev/stdout, is written to as it is)
    if (a.csv !== undefined) {
      if (outputTarget(a.csv).special) checkNotRunFile(a.csv, '--csv', 'metrics.csv');
      else {
        // a model, an image or a data set's file given by mistake (a link is followed): refused, not replaced
        checkOutputFile(a.csv, '--csv', 'metrics.csv', 'metricsCsv');
      }
    }
    const csvToStdout = a.csv !== undefined && isStdout(a.csv);
    // with the CSV on stdout, what was written is said on stderr
    if (a.tensorboard !== undefined) {
      const { file, others } = writeTensorBoard(a.run, a.tensorboard);
      (csvToStdout ? process.stderr : process.stdout).write(`wrote ${file}\n`);
      if (others.length > 0) {
        process.stderr.write(
          `alexnet export-metrics: warning: ${a.tensorboard} holds ${others.length === 1 ? 'another event file' : `${others.length} other event files`} (${others.slice(0, 3).join(', ')}${others.length > 3 ? ', ...' : ''}): TensorBoard shows them as one run, the steps of an earlier export twice; remove ${others.length === 1 ? 'it' : 'them'} or give each export a folder of its own\n`,
        );
      }
    }
    if (csvToStdout) {
      // `--csv /dev/stdout` (or the file stdout goes to): the CSV alone on stdout, written through it (a socket, as
      // a parent process may give, cannot be opened by name), the count on stderr
      const { text, rows } = runCsv(a.run);
      // the count once the CSV is out (a reader gone first ends the command: output-gone.ts)
      process.stdout.write(text, (err) => {
        if (!err) process.stderr.write(`wrote ${rows} rows to ${a.csv}\n`);
        if (!err && rows === 0) noStepsWarning(a.run);
      });
    } else if (a.csv !== undefined) {
      const rows = writeCsv(a.run, a.csv);
      process.stdout.write(`wrote ${rows} rows to ${a.csv}\n`);
      if (rows === 0) noStepsWarning(a.run);
    }
  },
};

/** A run folder that has logged no step yet (stopped before its first, or just started): an export of it is a header alone. */
function noStepsWarning(run: string): void {
  process.stderr.write(`alexnet export-metrics: warning: ${run} has logged no training step yet: the CSV is its header alone\n`);
}
