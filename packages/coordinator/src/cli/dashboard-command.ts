/**
 * `alexnet dashboard RUN_DIR`: the dashboard of a run folder (dashboard/run-dashboard.ts), finished or still
 * training: its curves from metrics.jsonl as they grow, its kernels and feature maps from its latest
 * checkpoint. Serves until Ctrl-C.
 */
import type { CommandModule } from 'yargs';
import { backendChoices, type RequestedBackend } from '@alexnet-mp/core';
import { checkDataLayout } from '@alexnet-mp/core/data';
import { openRunDashboard } from '../dashboard/run-dashboard.js';
import { isGeneratedData } from '../training-data.js';
import { checkUiArgs, uiOptions } from './ui-options.js';
import { surviveLostOutput } from './output-gone.js';
import { COMMAND_LIST } from './command-list.js';

interface Args {
  run: string;
  'ui-port': number;
  'ui-host': string;
  'ui-insecure': boolean;
  'ui-refresh': number;
  backend: string;
  data?: string;
  'cache-dir'?: string;
}

export const dashboardCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['dashboard'],
  builder: (y) =>
    y
      .positional('run', { type: 'string', demandOption: true, describe: 'the run folder (--run-dir of the run)' })
      .options({
        'ui-port': { ...uiOptions['ui-port'], default: 8080, describe: 'the port to serve the dashboard on; 0: a free port the OS picks. The URL is printed' },
        'ui-host': uiOptions['ui-host'],
        'ui-insecure': uiOptions['ui-insecure'],
        'ui-refresh': { ...uiOptions['ui-refresh'], describe: 'seconds between looks for a newer checkpoint (its kernels) while a page is open' },
        backend: { choices: backendChoices, default: 'auto', describe: 'the gpu.js mode of the feature maps' },
        data: { type: 'string', describe: "the data set of the feature maps' test images (default: the run's own)" },
        'cache-dir': { type: 'string', describe: 'the data cache folder (as for training)' },
      })
      .example('$0 dashboard runs/c10', 'http://127.0.0.1:8080/ shows the run, following it while it trains')
      .example('$0 dashboard training/cifar10 --ui-port 0', "the shipped CIFAR-10 run's curves on a free port") as never,
  handler: async (a) => {
    checkUiArgs(a);
    // it serves until stopped: a terminal or pipe gone does not end it (its pages still read it)
    surviveLostOutput();
    // a --data given that is not there is said before anything is served (the run's own, moved, is said and passed over)
    if (a.data !== undefined && !isGeneratedData(a.data)) checkDataLayout(a.data);
    const info = (l: string) => process.stderr.write(`alexnet dashboard: ${l}\n`);
    const d = await openRunDashboard({ runDir: a.run, host: a['ui-host'], port: a['ui-port'], refreshS: a['ui-refresh'], backend: a.backend as RequestedBackend, data: a.data, cacheDir: a['cache-dir'], info });
    process.stdout.write(`alexnet dashboard: ${a.run} at ${d.url} (Ctrl-C stops it)\n`);
    await new Promise<void>((resolve) => {
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => resolve());
    });
    await d.close();
    process.exit(0);
  },
};
