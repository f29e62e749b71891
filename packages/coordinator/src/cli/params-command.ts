/** `alexnet params`: the exact parameter count of a preset, per layer. */
import type { CommandModule } from 'yargs';
import { countParameters, forwardMacs, getPreset, presetNames } from '@alexnet-mp/core';

interface Args {
  preset: string;
  json: boolean;
}

export const paramsCommand: CommandModule<object, Args> = {
  command: 'params',
  describe: 'print the exact parameter count of a preset, per layer (both towers)',
  builder: (y) =>
    y
      .option('preset', { choices: presetNames, default: 'paper', describe: 'model preset' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }) as never,
  handler: (a) => {
    const spec = getPreset(a.preset);
    const { perLayer, total } = countParameters(spec);
    if (a.json) {
      process.stdout.write(JSON.stringify({ preset: spec.name, total, perLayer, forwardMacsPerImage: forwardMacs(spec) }) + '\n');
      return;
    }
    const fmt = (n: number) => n.toLocaleString('en-US');
    process.stdout.write(`preset ${spec.name}: ${fmt(total)} parameters, ${fmt(forwardMacs(spec))} multiply-adds per image forward\n`);
    for (const l of perLayer) process.stdout.write(`  ${l.layer.padEnd(6)} weights ${fmt(l.weights).padStart(12)}  biases ${fmt(l.biases).padStart(7)}\n`);
  },
};
