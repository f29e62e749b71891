/**
 * How long the coordinator takes to make a synthetic batch (`--data synthetic`, the default; batches of 2 M
 * pixels or more on worker threads, core's data/synthetic.ts): `node --import tsx bench/synthetic-batches.ts`. The training loop makes the next batch while the
 * workers compute the step (coordinator.ts `run`), so this is hidden where it is shorter than a step and
 * the coordinator has a core to itself.
 */
import os from 'node:os';
import { getPreset } from '@alexnet-mp/core';
import { SyntheticSource } from '@alexnet-mp/coordinator';

// no options: --help says so, anything else is refused
const args = process.argv.slice(2);
if (args.length > 0) {
  const help = args.includes('--help') || args.includes('-h');
  (help ? process.stdout : process.stderr).write(`${help ? '' : `synthetic-batches.ts: takes no options (${args.join(' ')}); `}usage: node --import tsx bench/synthetic-batches.ts: the time to make a synthetic batch of each preset\n`);
  process.exit(help ? 0 : 2);
}

process.stdout.write(`synthetic batches, ${os.cpus().length} CPU cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), mean of 3 after one untimed\n`);
for (const [preset, batch] of [['tiny', 64], ['cifar', 64], ['cifar', 128], ['paper', 128]] as const) {
  const source = new SyntheticSource(getPreset(preset), 1);
  await source.batch(0, batch);
  const t0 = performance.now();
  for (let step = 1; step <= 3; step++) await source.batch(step, batch);
  process.stdout.write(`${preset}, batch ${batch}: ${((performance.now() - t0) / 3).toFixed(1)} ms a batch\n`);
}
