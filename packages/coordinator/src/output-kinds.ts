/**
 * What each command's output file is, told from its first bytes, so that an existing file of another kind given
 * as an output by mistake (a model, an image, a data set's file reached through a link) is refused instead of
 * replaced (trained-model.ts checkReplaceable), and the files of `alexnet features` are not replaced one by one by
 * another command (the others would then describe rows that are gone).
 */
import fs from 'node:fs';
import { checkReplaceable } from './trained-model.js';
import { UserError } from './cli/errors.js';
import { FEATURES_FORMAT, companionFiles } from './inspect/feature-file.js';

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The first bytes of each kind (a file shorter than its mark is another kind). */
export const outputKinds = {
  npy: { what: 'a NumPy .npy file', looksLike: (head: Buffer) => head.subarray(0, NPY_MAGIC.length).equals(NPY_MAGIC) },
  png: { what: 'a PNG picture', looksLike: (head: Buffer) => head.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE) },
  // export-metrics' header row (export-metrics.ts csvText)
  metricsCsv: { what: "a CSV of a run's metrics (export-metrics --csv)", looksLike: (head: Buffer) => head.toString('latin1').startsWith('step,wall_time,') },
  // evaluate --wrong's JSON lines
  wrongList: { what: 'a list of misclassified images (JSON lines)', looksLike: (head: Buffer) => head.toString('latin1').startsWith('{"index":') },
  // worker --trace-crossings' JSON lines (packages/worker/src/crossing-trace.ts)
  crossingTrace: { what: 'a crossing trace (worker --trace-crossings)', looksLike: (head: Buffer) => head.toString('latin1').startsWith('{"run":') },
  // an 8-byte header length, then the JSON header
  model: { what: 'a model file (.safetensors)', looksLike: (head: Buffer) => head.length > 8 && head[8] === 0x7b },
} as const;

/** Refuses to replace an existing `out` that is not of `kind` (an empty file, or none, is fine). */
export function checkOutputKind(out: string, option: string, kind: keyof typeof outputKinds): void {
  const k = outputKinds[kind];
  checkReplaceable(out, option, k.what, k.looksLike);
}

/** Whether `file` is the rows of `alexnet features` (its F.json beside it says so). */
function isFeaturesRows(file: string): boolean {
  try {
    const meta = JSON.parse(fs.readFileSync(companionFiles(file).meta, 'utf8')) as { format?: unknown };
    return meta.format === FEATURES_FORMAT;
  } catch {
    return false;
  }
}

/**
 * Refuses `out` of another command where it is a features file (F.npy with its F.json) or its labels
 * (F.labels.npy beside such an F.npy): `alexnet features --out F.npy` writes them again, all together.
 */
export function checkNotFeaturesFile(out: string, option: string, example: string): void {
  if (out.endsWith('.npy') && !out.endsWith('.labels.npy') && isFeaturesRows(out)) {
    throw new UserError(`${option} ${out} is the rows of the features described in ${companionFiles(out).meta}: write it elsewhere, e.g. ${option} ${example} (alexnet features --out ${out} makes them again)`);
  }
  const owner = out.replace(/\.labels\.npy$/, '.npy');
  if (owner !== out && isFeaturesRows(owner)) throw new UserError(`${option} ${out} is the labels file of the features in ${owner}: write it elsewhere, e.g. ${option} ${example}`);
}
