/** `alexnet summary RUN_DIR`: a run folder's sessions, progress and per-epoch table, from its metrics.jsonl. */
import type { CommandModule } from 'yargs';
import { formatRunReport, readRunEvents, summariseRun } from '../run-summary.js';
import { positiveInt } from './options.js';
import { latestCheckpoint, stepOfFile } from '@alexnet-mp/core';
import { checkpointDir } from '../resume.js';
import { COMMAND_LIST } from './command-list.js';

interface Args {
  run: string;
  per?: number;
  json: boolean;
}

export const summaryCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['summary'],
  builder: (y) =>
    y
      .positional('run', { type: 'string', demandOption: true, describe: 'the run folder (--run-dir of the run)' })
      .option('per', { type: 'number', describe: 'steps per table row (default: an epoch, or 100 steps for a run without epochs)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the report as one JSON object' })
      .example('$0 summary runs/c10', 'Markdown: sessions and one row per epoch') as never,
  handler: (a) => {
    if (a.per !== undefined) positiveInt(a.per, 'per');
    // which checkpoints the folder still has (a finished run's may have been taken out once its model was exported)
    const kept = latestCheckpoint(checkpointDir(a.run));
    const report = { ...summariseRun(readRunEvents(a.run), a.per), latestKept: kept === null ? null : stepOfFile(kept) };
    process.stdout.write(a.json ? JSON.stringify(report) + '\n' : formatRunReport(report));
  },
};
