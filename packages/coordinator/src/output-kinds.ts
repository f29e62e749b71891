/**
 * What each command's output file is, told from its first bytes, so that an existing file of another kind given
 * as an output by mistake (a model, an image, a data set's file reached through a link) is refused instead of
 * replaced, and the files of `alexnet features` are not replaced one by one by another command (the others would
 * then describe rows that are gone).
 */
import fs from 'node:fs';
import { checkWritable } from './trained-model.js';
import { UserError } from './cli/errors.js';
import { companionFiles, isFeaturesRows, labelsOwner } from './inspect/feature-file.js';

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The first bytes of each kind (`size`: the whole file's; a file shorter than its mark is another kind). */
export const outputKinds = {
  npy: { what: 'a NumPy .npy file', looksLike: (head: Buffer) => head.subarray(0, NPY_MAGIC.length).equals(NPY_MAGIC) },
  png: { what: 'a PNG picture', looksLike: (head: Buffer) => head.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE) },
  // export-metrics' header row (export-metrics.ts csvText)
  metricsCsv: { what: "a CSV of a run's metrics (export-metrics --csv)", looksLike: (head: Buffer) => head.toString('latin1').startsWith('step,wall_time,') },
  // evaluate --wrong's JSON lines
  wrongList: { what: 'a list of misclassified images (JSON lines)', looksLike: (head: Buffer) => head.toString('latin1').startsWith('{"index":') },
  // worker --trace-crossings' JSON lines (packages/worker/src/crossing-trace.ts)
  crossingTrace: { what: 'a crossing trace (worker --trace-crossings)', looksLike: (head: Buffer) => head.toString('latin1').startsWith('{"run":') },
  // safetensors: a little-endian u64 header length that fits in the file, then the JSON header
  model: { what: 'a model file (.safetensors)', looksLike: (head: Buffer, size: number) => head.length > 8 && head[8] === 0x7b && 8 + Number(head.readBigUInt64LE(0)) <= size },
} as const satisfies Record<string, { what: string; looksLike: (head: Buffer, size: number) => boolean }>;

export type OutputKind = keyof typeof outputKinds;

/**
 * Refuses to replace an existing `out` that is not of `kind` (a model, an image, a data file given as a command's
 * list or picture by mistake), read from its first bytes. An empty file, or none, is fine; a device or a pipe is
 * written to, not replaced.
 */
export function checkOutputKind(out: string, option: string, kind: OutputKind): void {
  if (isOfKind(out, kind) === false) throw new UserError(`${option} ${out} exists and is not ${outputKinds[kind].what}: it would be replaced. Give a new file name (or remove that file first)`);
}

/** Whether the regular file `file` is of `kind` by its first bytes; null when there is none, it is empty, not a regular file or not readable. */
function isOfKind(file: string, kind: OutputKind): boolean | null {
  let head: Buffer;
  let size: number;
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size === 0) return null;
    size = st.size;
    const fd = fs.openSync(file, 'r');
    try {
      head = Buffer.alloc(64);
      head = head.subarray(0, fs.readSync(fd, head, 0, 64, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null; // not there (or not readable: the write says so)
  }
  return outputKinds[kind].looksLike(head, size);
}

/** An output file: writable (trained-model.ts checkWritable) and, where a file is there, of `kind` (checkOutputKind). */
export function checkOutputFile(out: string, option: string, example: string, kind: OutputKind): void {
  checkWritable(out, option, example);
  checkOutputKind(out, option, kind);
}

/**
 * Refuses `out` of another command where it is a features file (F.npy with its F.json) or its labels
 * (F.labels.npy beside such an F.npy): `alexnet features --out F.npy` writes them again, all together.
 */
export function checkNotFeaturesFile(out: string, option: string, example: string): void {
  const replace = (files: string) => `write it elsewhere, e.g. ${option} ${example}, or remove ${files} first to replace them`;
  if (isFeaturesRows(out)) {
    const c = companionFiles(out);
    throw new UserError(`${option} ${out} is the rows of the features described in ${c.meta}: ${replace(`${out}, ${c.labels} and ${c.meta}`)}`);
  }
  const owner = labelsOwner(out);
  if (owner !== null && isFeaturesRows(owner)) throw new UserError(`${option} ${out} is the labels file of the features in ${owner}: ${replace(`${owner} and its companions`)}`);
}

/**
 * `alexnet features --out F.npy`: F.npy and the companions it writes beside it (F.labels.npy, F.files.txt, F.json)
 * replace only an earlier features run's files (or nothing): a file of another kind under one of those names (a
 * user's own F.json or F.files.txt) is refused. F.labels.npy beside an existing F.npy is that file's labels.
 */
export function checkFeaturesOutput(out: string, example: string): void {
  checkOutputFile(out, '--out', example, 'npy');
  const owner = labelsOwner(out);
  if (owner !== null && fs.existsSync(owner)) throw new UserError(`--out ${out} is the labels file of the features in ${owner}: write it elsewhere, e.g. --out ${example}`);
  const c = companionFiles(out);
  checkOutputKind(c.labels, `--out ${out}: its labels file`, 'npy');
  // F.json: an earlier features run's description, or none; F.files.txt: beside an earlier run's rows (whose
  // description a run stopped while writing its files may have left out), or none
  const refuse = (f: string, what: string) => {
    throw new UserError(`--out ${out}: ${f} exists and is not ${what} of an earlier alexnet features --out ${out}: it would be replaced. Give another --out (or remove that file first)`);
  };
  if (fs.existsSync(c.meta) && !isFeaturesRows(out)) refuse(c.meta, 'the description');
  if (fs.existsSync(c.files) && !isFeaturesRows(out) && isOfKind(out, 'npy') !== true) refuse(c.files, 'the file list');
}
