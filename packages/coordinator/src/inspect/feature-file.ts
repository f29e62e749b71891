/**
 * The files of `alexnet features --out F.npy`, read back: F.npy (float32 [rows, dim]), F.labels.npy (int32 [rows]),
 * F.files.txt (a folder's image files) and F.json, what the rows are: the layer, the model (its description and
 * weights digest), the data set and each row's place in the held-out split. `inspect neighbours --features F.npy`
 * searches these rows instead of running every held-out image through the model again, after checking that they
 * are the layer, model and split it would compute.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileError } from '@alexnet-mp/core';
import { decodeNpy, parseNpyHeader } from '../npy.js';
import { UserError } from '../cli/errors.js';
import type { TrainedModel } from '../trained-model.js';

export const FEATURES_FORMAT = 'alexnet-features';

/** F.json. */
export interface FeatureFileMeta {
  readonly format: typeof FEATURES_FORMAT;
  readonly version: 1;
  readonly layer: string;
  readonly rows: number;
  readonly dim: number;
  /** The model's one-line description, and its weights digest (TrainedModel.weightsDigest). */
  readonly model: string;
  readonly weights: string;
  /** The data set as given (--data, or the run's). */
  readonly data: string;
  /** Each row's place in the held-out split. */
  readonly held_out: readonly number[];
  /** The name of each label in F.labels.npy (label l is classes[l]); null for generated images; absent in files of older builds. */
  readonly classes?: readonly string[] | null;
}

/** FILE.npy's companions: FILE.labels.npy, FILE.files.txt and FILE.json. */
export const companionFiles = (out: string) => {
  const stem = out.replace(/\.npy$/, '');
  return { labels: `${stem}.labels.npy`, files: `${stem}.files.txt`, meta: `${stem}.json` };
};

/** F.npy when `file` is named as a features file's labels (F.labels.npy), else null. */
export const labelsOwner = (file: string): string | null => (file.endsWith('.labels.npy') ? `${file.slice(0, -'.labels.npy'.length)}.npy` : null);

/** Whether `file` is the rows of `alexnet features` (its F.json beside it says so). */
export function isFeaturesRows(file: string): boolean {
  if (!file.endsWith('.npy')) return false;
  try {
    const meta = JSON.parse(fs.readFileSync(companionFiles(file).meta, 'utf8')) as { format?: unknown };
    return meta.format === FEATURES_FORMAT;
  } catch {
    return false;
  }
}

/** A batch of rows read from the file. */
export interface RowBatch {
  readonly n: number;
  /** Each row's place in the held-out split. */
  readonly indices: readonly number[];
  /** [n][dim], row-major. */
  readonly rows: Float32Array;
  readonly labels: ArrayLike<number>;
}

export class FeatureFile {
  private constructor(
    readonly file: string,
    readonly meta: FeatureFileMeta,
    readonly labels: Int32Array,
    /** The image file of each row (a folder data set), else null. */
    readonly files: readonly string[] | null,
    private readonly body: number,
  ) {}

  /** Opens F.npy and its companions; a UserError naming the file that is missing or does not fit. */
  static open(file: string): FeatureFile {
    // the rows file itself first: missing, or not what alexnet features writes (F.npy), said as such
    if (!fs.existsSync(file)) throw new UserError(`--features ${file}: no such file (alexnet features --out F.npy writes one)`);
    if (fs.statSync(file).isDirectory()) throw new UserError(`--features ${file} is a folder: give the F.npy that alexnet features --out F.npy wrote`);
    if (!file.endsWith('.npy')) throw new UserError(`--features ${file}: not a features file: give the F.npy that alexnet features --out F.npy wrote (its companions F.json and F.labels.npy beside it)`);
    // the labels companion given for the rows: name the rows file
    const owner = labelsOwner(file);
    if (owner !== null) throw new UserError(`--features ${file} is the labels file of the features in ${owner}: give that one`);
    const c = companionFiles(file);
    const read = (f: string, what: string): Buffer => {
      try {
        return fs.readFileSync(f);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`--features ${file}: ${f} is missing (${what}); make the files again with alexnet features --out ${file}`);
        throw fileError('read', f, e);
      }
    };
    let meta: FeatureFileMeta;
    try {
      meta = JSON.parse(read(c.meta, 'what the rows are').toString('utf8')) as FeatureFileMeta;
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`--features ${file}: ${c.meta} is not JSON: ${(e as Error).message}`);
    }
    if (meta.format !== FEATURES_FORMAT || meta.version !== 1 || !Array.isArray(meta.held_out)) throw new UserError(`--features ${file}: ${c.meta} is not the description alexnet features writes`);
    let head: ReturnType<typeof parseNpyHeader>;
    let size: number;
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(4096);
        const got = fs.readSync(fd, buf, 0, buf.length, 0);
        head = parseNpyHeader(buf.subarray(0, got));
        size = fs.fstatSync(fd).size;
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== undefined) throw fileError('read', file, e);
      throw new UserError(`--features ${file}: ${(e as Error).message}`);
    }
    const [rows, dim] = head.shape;
    if (head.descr !== '<f4' || head.shape.length !== 2 || rows !== meta.rows || dim !== meta.dim || meta.held_out.length !== rows || size !== head.body + 4 * rows! * dim!) {
      throw new UserError(`--features ${file}: float32 [${head.shape.join(', ')}] of ${size} bytes does not match ${c.meta} (${meta.rows} rows of ${meta.dim} values): make the files again`);
    }
    let labels: Int32Array;
    try {
      const l = decodeNpy(read(c.labels, 'the class of each row'));
      if (!(l.values instanceof Int32Array) || l.values.length !== rows) throw new Error(`${l.values.length} values, expected ${rows} int32`);
      labels = l.values;
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`--features ${file}: ${c.labels}: ${(e as Error).message}`);
    }
    const files = fs.existsSync(c.files) ? fs.readFileSync(c.files, 'utf8').split('\n').filter((l) => l !== '') : null;
    return new FeatureFile(file, meta, labels, files, head.body);
  }

  /** Refuses rows that are not what `model` would give for `layer`: another layer, other weights (before any data is opened). */
  checkModel(model: TrainedModel, layer: string): void {
    const { meta, file } = this;
    if (meta.layer !== layer) throw new UserError(`--features ${file}: its rows are ${meta.layer}, not ${layer}: give --layer ${meta.layer}, or ${this.again(layer)}`);
    if (meta.weights !== model.weightsDigest()) throw new UserError(`--features ${file}: its rows come from ${meta.model} (weights ${meta.weights}), not from ${model.description} (weights ${model.weightsDigest()}): ${this.again(layer)}`);
  }

  private again(layer: string): string {
    return `make them again (alexnet features --layer ${layer} --out ${this.file} with this model and data), or leave out --features`;
  }

  /** Refuses rows of another data set's held-out split than `dataName`'s (whose files, a folder's, are `heldOutFiles`). */
  checkSplit(layer: string, dataName: string, heldOutFiles: readonly string[] | undefined): void {
    const { meta, file } = this;
    const again = this.again(layer);
    if (heldOutFiles && this.files) {
      // the same file reached by another path (the data folder through a symbolic link) is the same image
      const same = (a: string | undefined, b: string) => a === b || (a !== undefined && realPath(a) === realPath(b));
      const bad = this.files.findIndex((f, r) => !same(heldOutFiles[meta.held_out[r]!], f));
      if (bad >= 0) throw new UserError(`--features ${file}: row ${bad} is ${this.files[bad]}, which is not held-out image ${meta.held_out[bad]} of ${dataName}: ${again}`);
    } else if (path.resolve(meta.data) !== path.resolve(dataName) && meta.data !== dataName) {
      throw new UserError(`--features ${file}: its rows are of ${meta.data}, not ${dataName}: ${again}`);
    }
  }

  /** The rows, `per` at a time, in the file's order, read as they are needed. */
  async *batches(per = 1024): AsyncGenerator<RowBatch> {
    const { rows, dim } = this.meta;
    const fd = fs.openSync(this.file, 'r');
    try {
      for (let start = 0; start < rows; start += per) {
        const n = Math.min(per, rows - start);
        const bytes = Buffer.alloc(n * dim * 4);
        const got = fs.readSync(fd, bytes, 0, bytes.length, this.body + start * dim * 4);
        if (got !== bytes.length) throw new UserError(`--features ${this.file}: cut short at row ${start}`);
        // little-endian floats (the byte order of every platform Node.js runs on), copied into an aligned array
        const values = new Float32Array(n * dim);
        new Uint8Array(values.buffer).set(bytes);
        yield { n, indices: this.meta.held_out.slice(start, start + n), rows: values, labels: this.labels.subarray(start, start + n) };
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** A file's real path (links resolved), or the path as given when it cannot be resolved (gone since). */
function realPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}
