/**
 * `alexnet params`: a preset (or a model file's) as a table, a layer a row (what it does, which towers it
 * reads, its shapes on one tower, its parameters and multiply-adds), with the totals and the model hash
 * (what workers and checkpoints are checked against).
 */
import type { CommandModule } from 'yargs';
import { countParameters, forwardMacs, getPreset, layerTable, modelHash, presetNames, type ModelSpec } from '@alexnet-mp/core';
import { TrainedModel } from '../trained-model.js';
import { UserError } from './errors.js';
import { COMMAND_LIST } from './command-list.js';

interface Args {
  preset?: string;
  model?: string;
  json: boolean;
}

export const paramsCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['params'],
  builder: (y) =>
    y
      .option('preset', { choices: presetNames, describe: 'model preset (default paper; with --model, the file\'s)' })
      .option('model', { type: 'string', describe: 'a model file (alexnet export): the table of its preset, and what the file says of itself' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object: preset, model_hash, total, per_layer, forward_macs_per_image, layers [{layer, type, op, input, in_shape, out_shape, towers, weights, biases, macs}]' })
      .example('$0 params', "the paper's network: 60,965,224 parameters")
      .example('$0 params --model models/cifar10.safetensors', "the shipped model's layers") as never,
  handler: (a) => {
    if (a.model !== undefined) {
      let m: TrainedModel;
      try {
        m = TrainedModel.openFile(a.model, { folderHint: "a run's model file comes from alexnet export --run RUN_DIR, or give the run's --preset" });
      } catch (e) {
        // params has no --run: say what it does take
        if (e instanceof Error && /is a training checkpoint, not a model file/.test(e.message)) {
          throw new UserError(`--model ${a.model} is a training checkpoint, not a model file: make a model file of it with alexnet export --run RUN_DIR, or give the run's --preset`);
        }
        throw e;
      }
      if (a.preset !== undefined && a.preset !== m.spec.name) throw new UserError(`--preset ${a.preset}: ${a.model} is a model of preset ${m.spec.name}; leave out --preset (the table is the file's)`);
      if (!a.json) process.stdout.write(`${m.description}\n`);
      process.stdout.write(paramsReport(m.spec, a.json));
      return;
    }
    process.stdout.write(paramsReport(getPreset(a.preset ?? 'paper'), a.json));
  },
};

const fmt = (n: number) => (n === 0 ? '-' : n.toLocaleString('en-US'));
const shape = (s: readonly number[]) => (s[1] === 1 && s[2] === 1 ? String(s[0]) : s.join('x'));

/** What `alexnet params` prints: one JSON line, or the headline and a table a layer. */
export function paramsReport(preset: string | ModelSpec, json: boolean): string {
  const spec = typeof preset === 'string' ? getPreset(preset) : preset;
  const { perLayer, total } = countParameters(spec);
  const hash = modelHash(spec);
  const layers = layerTable(spec);
  if (json) {
    // field names in snake case, as every other JSON the program writes (model_hash, top1_error, ...)
    const row = (l: (typeof layers)[number]) => ({ layer: l.layer, type: l.type, op: l.op, input: l.input, in_shape: l.inShape, out_shape: l.outShape, towers: l.towers, weights: l.weights, biases: l.biases, macs: l.macs });
    return JSON.stringify({ preset: spec.name, model_hash: hash, total, per_layer: perLayer, forward_macs_per_image: forwardMacs(spec), layers: layers.map(row) }) + '\n';
  }
  const head = ['layer', 'type', 'what', 'reads', 'in (a tower)', 'out (a tower)', 'towers', 'weights', 'biases', 'multiply-adds'];
  const rows = layers.map((l) => [l.layer, l.type, l.op, l.input === 'both' ? 'both towers' : 'own tower', shape(l.inShape), shape(l.outShape), String(l.towers), fmt(l.weights), fmt(l.biases), fmt(l.macs)]);
  const total_ = ['total', '', '', '', '', '', '', fmt(perLayer.reduce((s, l) => s + l.weights, 0)), fmt(perLayer.reduce((s, l) => s + l.biases, 0)), fmt(forwardMacs(spec))];
  const all = [head, ...rows, total_];
  const widths = head.map((_, k) => Math.max(...all.map((r) => r[k]!.length)));
  // numbers to the right, words to the left
  const line = (r: string[]) => r.map((c, k) => (k >= 6 ? c.padStart(widths[k]!) : c.padEnd(widths[k]!))).join('  ').trimEnd();
  return [
    `preset ${spec.name}: ${total.toLocaleString('en-US')} parameters, ${forwardMacs(spec).toLocaleString('en-US')} multiply-adds per image forward (both towers); model hash ${hash}`,
    '',
    line(head),
    ...rows.map(line),
    line(total_),
    '',
    'shapes are channels x height x width on one tower ("reads both towers": the two towers\' outputs joined, a crossing); weights, biases and multiply-adds count both towers',
  ].join('\n') + '\n';
}
