/** `alexnet launch`: the two workers and the coordinator on this machine, in one command. */
import type { CommandModule } from 'yargs';
import { getPreset } from '@alexnet-mp/core';
import { launch } from '../launch.js';
import { UserError } from './errors.js';
import { backendOption, checkRunArgs, evalBatchOf, fallbackOption, runOptions, type RunArgs } from './options.js';

interface Args extends RunArgs {
  backend: string;
  host: string;
  ports: string;
  'on-fallback': string;
}

export const launchCommand: CommandModule<object, Args> = {
  command: 'launch',
  describe: 'train on this machine: start both workers and the coordinator as child processes (the main command)',
  builder: (y) =>
    y
      .usage(
        '$0 launch [options]\n\nStarts worker 0, worker 1 (on free ports) and the coordinator, prefixes their output ' +
          '([worker0], [worker1], [coord]) and stops them all at the end, on Ctrl-C, or when one dies. ' +
          'The default (preset tiny, 20 steps of 16 images) takes a few seconds on two CPU cores; ' +
          '--preset cifar --steps 5 --batch 16 takes about a minute.',
      )
      .options({
        ...runOptions,
        backend: backendOption,
        'on-fallback': fallbackOption,
        host: { type: 'string', default: '127.0.0.1', describe: 'address the workers listen on' },
        ports: { type: 'string', default: '0,0', describe: "the workers' ports, tower 0's first (0: the OS picks a free one)" },
      })
      .example('$0 launch', 'tiny preset, 20 steps, metrics as JSON lines on stdout')
      .example('$0 launch --preset cifar --steps 5 --backend webasm --run-dir runs/c1', 'a few cifar steps, logs and metrics in runs/c1')
      .example('$0 launch --steps 100 --eval-every 20 --eval-batch 32', 'held-out loss and top-1/top-5 error every 20 steps') as never,
  handler: async (a) => {
    getPreset(a.preset);
    checkRunArgs(a);
    const ports = a.ports.split(',').map((s) => Number(s.trim()));
    if (ports.length !== 2 || ports.some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) throw new UserError(`--ports must be two ports 0..65535 separated by a comma, got "${a.ports}"`);
    const common = ['--preset', a.preset];
    // the workers' message size limits follow the largest batch they will see (training or evaluation)
    const maxBatch = a['eval-every'] > 0 ? Math.max(a.batch, evalBatchOf(a)) : a.batch;
    const workerArgs = [...common, '--backend', a.backend, '--on-fallback', a['on-fallback'], '--max-batch', String(maxBatch)];
    const coordinatorArgs = [
      ...common,
      ...['--steps', a.steps, '--batch', a.batch, '--seed', a.seed, '--lr', a.lr, '--momentum', a.momentum, '--weight-decay', a['weight-decay'], '--data', a.data].map(String),
      ...(a['run-dir'] ? ['--run-dir', a['run-dir']] : []),
      ...['--eval-every', a['eval-every'], '--eval-batches', a['eval-batches']].map(String),
      ...(a['eval-batch'] !== undefined ? ['--eval-batch', String(a['eval-batch'])] : []),
    ];
    const r = await launch({ workerArgs, coordinatorArgs, host: a.host, ports: [ports[0]!, ports[1]!], runDir: a['run-dir'] });
    process.exit(r.code);
  },
};
