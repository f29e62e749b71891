/** `alexnet params`: the exact parameter count of a preset, per layer, and its model hash (what workers and checkpoints are checked against). */
import type { CommandModule } from 'yargs';
import { countParameters, forwardMacs, getPreset, modelHash, presetNames } from '@alexnet-mp/core';

interface Args {
  preset: string;
  json: boolean;
}

export const paramsCommand: CommandModule<object, Args> = {
  command: 'params',
  describe: 'print the exact parameter count of a preset, per layer (both towers), and its model hash',
  builder: (y) =>
    y
      .option('preset', { choices: presetNames, default: 'paper', describe: 'model preset' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }) as never,
  handler: (a) => {
    process.stdout.write(paramsReport(a.preset, a.json));
  },
};

/** What `alexnet params` prints: one JSON line, or a line per layer under a headline. */
export function paramsReport(preset: string, json: boolean): string {
  const spec = getPreset(preset);
  const { perLayer, total } = countParameters(spec);
  const hash = modelHash(spec);
  if (json) return JSON.stringify({ preset: spec.name, modelHash: hash, total, perLayer, forwardMacsPerImage: forwardMacs(spec) }) + '\n';
  const fmt = (n: number) => n.toLocaleString('en-US');
  const lines = [`preset ${spec.name}: ${fmt(total)} parameters, ${fmt(forwardMacs(spec))} multiply-adds per image forward; model hash ${hash}`];
  for (const l of perLayer) lines.push(`  ${l.layer.padEnd(6)} weights ${fmt(l.weights).padStart(12)}  biases ${fmt(l.biases).padStart(7)}`);
  return lines.join('\n') + '\n';
}
