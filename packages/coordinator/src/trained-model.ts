/**
 * A trained model to use (`alexnet predict`, `alexnet inspect --model`) or to
 * export (`alexnet export`): a model file (core's model-file.ts: weights and
 * what it takes to use them) or a run folder's checkpoint, read the same way.
 *
 * From a run, the class names and the input mean come from the checkpoint
 * (runs save both); for checkpoints that lack them, from the run's data set:
 * the class names by listing it (nothing decoded), the mean from its
 * training split's statistics (as the coordinator sent it to the workers).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError,
  classNamesFor,
  decodeCheckpoint,
  decodeSafetensors,
  decodeModel,
  encodeModel,
  firstFew,
  fsReason,
  getPreset,
  readRegularFile,
  listCheckpoints,
  replaceFile,
  type ModelInfo,
  type ModelSpec,
  type TowerParams,
  unverifiedNote,
} from '@alexnet-mp/core';
import { DEFAULT_INPUT_MEAN } from '@alexnet-mp/worker';
import { checkpointDir, notThisRuns, readCheckpointHeader, resumedData, runOfCheckpointFile, runOfCheckpointsFolder, type SavedRun } from './resume.js';
import { sourceNames } from './batch-source.js';
import { runCacheDir } from './training-data.js';
import { UserError } from './cli/errors.js';
import { lastSessionEnd, readRunJson } from './run-files.js';
import { runFileKind } from './run-dir.js';

/** The model shipped with the repository: `alexnet predict`'s default. */
export const DEFAULT_MODEL_FILE = fileURLToPath(new URL('../../../models/cifar10.safetensors', import.meta.url));

/** A path as messages show it: relative to the working directory when it is below it (the default model's stays short). */
export function shownPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/** How a command takes a model file instead of a run folder, for the hint of a run without checkpoints. */
export interface ModelFileHint {
  /** The model file named (`--model F`). */
  readonly give: (file: string) => string;
  /** The same in words, for a file not named. */
  readonly giveAny: string;
  /** How to read another checkpoint of the run than its latest (default: `--step N reads another`). */
  readonly anotherStep?: (runDir: string) => string;
}

/** predict, inspect, evaluate, features: --model. */
export const MODEL_OPTION_HINT: ModelFileHint = { give: (file) => `--model ${file}`, giveAny: 'give that file with --model' };

/**
 * Why a run folder may have no checkpoint: a run still training that has written none yet, a finished run whose
 * checkpoints were replaced by its exported model (the shipped CIFAR-10 run and models/cifar10.safetensors: named
 * when the model came from this run), or a run that wrote none. `hint`: how the command takes a model file.
 */
export function noCheckpointHint(runDir: string, hint: ModelFileHint = MODEL_OPTION_HINT): string {
  const run = readRunJson(runDir);
  if (run === null) return 'runs write them into RUN_DIR/checkpoints when given --run-dir, at their end and every --checkpoint-every steps';
  const end = lastSessionEnd(runDir);
  if (end === 'running') return 'its run has written none yet, or was stopped before its first: a run writes one every --checkpoint-every steps and at its end';
  if (end === 'stopped' || end === 'failed') return `its run ${end} before its first: a run writes one every --checkpoint-every steps and at its end`;
  const { give, giveAny } = hint;
  const runId = run.runId;
  try {
    const shipped = decodeSafetensors(fs.readFileSync(DEFAULT_MODEL_FILE)).metadata.run_id;
    if (runId !== undefined && shipped === runId) return `this finished run keeps its model instead: ${give(shownPath(DEFAULT_MODEL_FILE))}`;
  } catch {
    // no shipped model here: the general hint
  }
  return `a finished run may keep only the model exported from it (alexnet export): ${giveAny}`;
}

/** What the coordinator keeps in a checkpoint that a trained model needs. */
export interface SavedForModel extends SavedRun {
  /** The per-channel mean the workers subtracted (null: synthetic data, the default mean). */
  input_mean?: number[] | null;
}

export interface TrainedModelOptions {
  /** The data set whose names and mean a run's checkpoint lacks (default: the run's own). */
  readonly data?: string;
  readonly cacheDir?: string;
  readonly info?: (line: string) => void;
}

export class TrainedModel {
  private names: string[] | null;
  private mean: number[] | null;
  private resolvedData: string | null | undefined;

  private constructor(
    readonly spec: ModelSpec,
    readonly params: [TowerParams, TowerParams],
    /** The file read: a model file or a run's checkpoint. */
    readonly file: string,
    readonly kind: 'model' | 'checkpoint',
    readonly step: number | undefined,
    readonly seed: number,
    /** A model file's metadata; for a checkpoint, what its run saved. */
    private readonly fromFile: ModelInfo | null,
    private readonly saved: SavedForModel,
    private readonly o: TrainedModelOptions,
    readonly runDir?: string,
  ) {
    // a run on generated (synthetic) images recorded its names as null (older checkpoints have none at all): its
    // own are `class N` and its mean 128, whatever data set --data names for the held-out images
    const synthetic = !fromFile && saved.class_names === null;
    this.names = fromFile ? [...fromFile.classes] : saved.class_names ? classNamesFor(spec, saved.class_names) : synthetic ? classNamesFor(spec, null) : null;
    this.ownNames = this.names;
    this.mean = fromFile ? [...fromFile.inputMean] : saved.input_mean && saved.input_mean.length > 0 ? [...saved.input_mean] : synthetic ? DEFAULT_INPUT_MEAN.slice(0, spec.inputChannels) : null;
  }

  /** A model file (`alexnet export`'s); a UserError or CheckpointError, one line, when it is missing or not one. */
  static openFile(file: string, o: TrainedModelOptions & { named?: string; folderHint?: string } = {}): TrainedModel {
    // how the messages name the file: as the option that gave it, or (compare's operands) as typed
    const named = o.named ?? `--model ${file}`;
    let buf: Buffer;
    try {
      buf = readRegularFile(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(code === 'ENOENT' ? `${named}: no such file` : code === 'EISDIR' ? `${named} is a folder: give a model file (.safetensors; ${o.folderHint ?? 'a run folder goes with --run'})` : `${named}: ${fsReason(e)}`);
    }
    const { spec, params, info, checksums } = decodeModel(buf, file);
    const note = unverifiedNote(file, checksums);
    if (note) o.info?.(note);
    return new TrainedModel(spec, params, file, 'model', info.step, info.seed ?? 0, info, {}, o);
  }

  /** A run folder's checkpoint: the latest, or that of `step`; a UserError, one line, when there is none. */
  static openRun(runDir: string, o: TrainedModelOptions & { step?: number; named?: string; modelHint?: ModelFileHint } = {}): TrainedModel {
    // how the messages name the folder: as the option that gave it, or (compare's operands) as typed
    const named = o.named ?? `--run ${runDir}`;
    if (!fs.existsSync(runDir)) throw new UserError(`${named}: no such run directory`);
    if (!fs.statSync(runDir).isDirectory()) {
      // one of a run's checkpoints (RUN/checkpoints/step-N.safetensors): that run, at that step
      const checkpoint = runOfCheckpointFile(runDir);
      if (checkpoint !== null) {
        if (o.step !== undefined) throw new UserError(`${named} is one of its run's checkpoints (step ${checkpoint.step}): give --step or that file, not both`);
        return TrainedModel.openRun(checkpoint.runDir, { ...o, step: checkpoint.step, named });
      }
      const hint = o.modelHint ?? MODEL_OPTION_HINT;
      throw new UserError(`${named} is not a folder: give a run folder (--run-dir of the run; for a model file, ${hint.giveAny})`);
    }
    // a run's checkpoints/ folder given for the run: the run folder above it
    const above = runOfCheckpointsFolder(runDir);
    if (above !== null) return TrainedModel.openRun(above, { ...o, named });
    const all = listCheckpoints(checkpointDir(runDir));
    if (all.length === 0) throw new UserError(`${named}: no checkpoint in ${checkpointDir(runDir)} (${noCheckpointHint(runDir, o.modelHint)})`);
    let file = all[all.length - 1]!;
    if (o.step !== undefined) {
      const want = `step-${String(o.step).padStart(9, '0')}.safetensors`;
      const found = all.find((f) => path.basename(f) === want);
      const steps = all.map((f) => Number(/(\d+)\.safetensors$/.exec(f)![1]));
      if (!found) throw new UserError(`--step ${o.step}: ${runDir} has no checkpoint of that step (it keeps steps ${steps.join(', ')})`);
      file = found;
    }
    // a damaged checkpoint is named with what is wrong; the others of the run may be sound
    const others = o.step === undefined && all.length > 1 ? ` (alexnet verify ${runDir} checks them all; ${o.modelHint?.anotherStep?.(runDir) ?? '--step N reads another'})` : '';
    let decoded: ReturnType<typeof decodeCheckpoint>;
    let spec: ModelSpec;
    try {
      const head = readCheckpointHeader(file);
      const preset = head.preset;
      if (preset === undefined) throw new CheckpointError(`${file} does not say its preset`);
      // another run's checkpoint in this run's folder (copied or renamed there): used, as asked, but said
      const foreign = notThisRuns(runDir, file, head);
      if (foreign !== null) o.info?.(`warning: ${file}: ${foreign}: not this run's own checkpoint (copied or renamed from another run?)`);
      spec = getPreset(preset);
      decoded = decodeCheckpoint(spec, readRegularFile(file), file);
    } catch (e) {
      if (e instanceof CheckpointError && e.damaged) throw new CheckpointError(`${e.message}${others}`, true);
      throw e;
    }
    const { params, state, checksums } = decoded;
    const note = unverifiedNote(file, checksums);
    if (note) o.info?.(note);
    return new TrainedModel(spec, params, file, 'checkpoint', state.step, state.seed, null, (state.extra ?? {}) as SavedForModel, o, runDir);
  }

  /** One line: the file, its preset and step, and the run it came from. */
  get description(): string {
    const run = this.fromFile?.runId ?? this.saved.run_id;
    return `${this.file} (preset ${this.spec.name}${this.step !== undefined ? `, step ${this.step}` : ''}${run ? ` of run ${run}` : ''})`;
  }

  /**
   * A digest of the weights and biases of both towers (SHA-256 over each tower's layers in name order, 16 hex
   * digits): the same for a checkpoint and the model file exported from it, different after any step.
   */
  weightsDigest(): string {
    if (this.digest === undefined) {
      const h = createHash('sha256');
      this.params.forEach((tower, t) => {
        for (const name of [...tower.keys()].sort()) {
          const p = tower.get(name)!;
          h.update(`${t}:${name}:${p.w.length}:${p.b.length};`);
          h.update(new Uint8Array(p.w.buffer, p.w.byteOffset, p.w.byteLength));
          h.update(new Uint8Array(p.b.buffer, p.b.byteOffset, p.b.byteLength));
        }
      });
      this.digest = h.digest('hex').slice(0, 16);
    }
    return this.digest;
  }

  private digest: string | undefined;

  /** The model file's metadata (null for a checkpoint). */
  get metadata(): ModelInfo | null {
    return this.fromFile;
  }

  /**
   * The data set this model's names, mean and held-out images come from: --data, else (a checkpoint) the
   * run's own (saying so once when it is found where the checkpoint was written, not from here), else
   * synthetic; null for a model file without --data.
   */
  dataName(): string | null {
    if (this.resolvedData === undefined) {
      if (this.o.data !== undefined) this.resolvedData = this.o.data;
      else if (this.kind === 'model') this.resolvedData = null;
      else {
        const fromRun = resumedData(this.saved);
        if (fromRun?.note !== undefined) this.o.info?.(fromRun.note);
        this.resolvedData = fromRun?.data ?? 'synthetic';
      }
    }
    return this.resolvedData;
  }

  /** The model's own class names: a model file's, or those its run recorded with the checkpoint; null when it has none. */
  private readonly ownNames: readonly string[] | null;

  /**
   * A warning when a data set's classes (`dataClasses`, in label order) are not the model's own names: its images
   * are then scored against the model's classes of the same index (a model of one data set evaluated on another's
   * folder), which the numbers do not say; `generated`: the data is synthetic images, of classes `class N`. Null
   * when they agree, or either has no names.
   */
  classMismatch(dataClasses: readonly string[] | undefined, generated = false): string | null {
    const own = this.ownNames;
    // generated images (synthetic gratings) have classes named `class N` only: a model of a real data set is told apart
    const data = generated ? classNamesFor(this.spec, null) : dataClasses;
    if (!own || !data || data.length === 0) return null;
    const differ = data.findIndex((c, i) => own[i] !== c);
    if (differ < 0) return null;
    if (generated) return `warning: synthetic images (gratings) are not the model's classes (${firstFew(own)}): each image is taken as the model's class of the same index`;
    return `warning: the data set's classes are not the model's (class ${differ} is ${data[differ]} there, ${own[differ] ?? 'none'} in the model; the data's ${firstFew(data)}, the model's ${firstFew(own)}): each image is taken as the model's class of the same index`;
  }

  /**
   * A folder without train/ (`data`) has its classes in its own folders' order: each must be one of the model's
   * classes by name (by index they would pair with the model's classes at random), and the model must keep names.
   */
  checkSplitClasses(data: string, dataClasses: readonly string[]): void {
    const own = this.ownNames?.slice(0, this.spec.classes);
    if (!own) throw new UserError(`${data} has no train/ folder, and the model keeps no class names to match its class folders to: give the data set's folder with its train/ (whose class order the model was trained in)`);
    const notOwn = dataClasses.filter((c) => !own.includes(c));
    if (notOwn.length > 0) {
      throw new UserError(
        `${data}: class folder${notOwn.length === 1 ? '' : 's'} ${firstFew(notOwn)} ${notOwn.length === 1 ? 'is' : 'are'} not among the model's classes; without a train/ folder the folders are matched to the model's classes by name: name each after one of ${firstFew(own, 10)}`,
      );
    }
  }

  /**
   * For a data set whose classes are all among the model's own names, but not as its first ones in its order (a
   * few of its classes, or another order): the model's output of each data class, by name. Null otherwise (the
   * same classes, a class the model does not have, or a model without names).
   */
  classOutputsByName(dataClasses: readonly string[] | undefined): number[] | null {
    const own = this.ownNames;
    if (!own || !dataClasses || dataClasses.length === 0 || dataClasses.every((c, i) => own[i] === c)) return null;
    const outputs = dataClasses.map((c) => own.indexOf(c));
    return outputs.every((k) => k >= 0 && k < this.spec.classes) ? outputs : null;
  }

  /** One name per output, in output order (`class N` where the data set has none). */
  async classNames(): Promise<string[]> {
    this.names ??= classNamesFor(this.spec, await classNamesOfData(this.dataName() ?? 'synthetic'));
    return this.names;
  }

  /**
   * The per-channel mean subtracted from the input: the model file's, else the checkpoint's (what the
   * coordinator sent the workers), else (older checkpoints) the data set's training mean, else 128.
   */
  async inputMean(): Promise<number[]> {
    if (this.mean) return this.mean;
    const data = this.dataName() ?? 'synthetic';
    if ((sourceNames as readonly string[]).includes(data)) this.mean = DEFAULT_INPUT_MEAN.slice(0, this.spec.inputChannels);
    else {
      const { augmentFor, openDataset } = await import('@alexnet-mp/core/data');
      const d = await openDataset(data, { size: augmentFor(this.spec.inputSize).storedSize, cacheDir: this.dataCacheDir(), log: this.o.info });
      this.mean = [...d.stats.mean];
    }
    return this.mean;
  }

  /**
   * Where to find the data's decoded cache: the one given, else the folder the run was given (a run trained
   * with --cache-dir elsewhere is not decoded again under the default), else the default.
   */
  dataCacheDir(): string | undefined {
    return runCacheDir(this.o.cacheDir, this.saved.cache_dir);
  }

  /** The run's data as its checkpoint describes it (a model file: as its metadata says). */
  get dataDescription(): string | undefined {
    return this.fromFile?.data ?? this.saved.data?.source;
  }

  get runId(): string | undefined {
    return this.fromFile?.runId ?? this.saved.run_id;
  }

  /** The model file's bytes: weights only, with the names, mean, run and step. */
  async encode(exported = new Date()): Promise<Buffer> {
    return encodeModel(this.spec, this.params, {
      classes: await this.classNames(),
      inputMean: await this.inputMean(),
      runId: this.runId,
      run: this.fromFile?.run ?? this.runDir,
      step: this.step,
      seed: this.seed,
      data: this.dataDescription,
      exported: exported.toISOString(),
    });
  }
}

/** Class names of a data set by listing it (nothing decoded); null for generated data. */
export async function classNamesOfData(data: string): Promise<string[] | null> {
  if ((sourceNames as readonly string[]).includes(data)) return null;
  const { CIFAR10_CLASSES, CIFAR10_DOWNLOAD, cifarClassNames, classFolderNames, findCifarBinaryDir, isImageFolderRoot } = await import('@alexnet-mp/core/data');
  if (data === CIFAR10_DOWNLOAD) return [...CIFAR10_CLASSES];
  const abs = path.resolve(data);
  const bin = fs.existsSync(abs) ? findCifarBinaryDir(abs) : null;
  if (bin) return cifarClassNames(bin);
  if (await isImageFolderRoot(abs)) return classFolderNames(path.join(abs, 'train'));
  throw new UserError(`the class names of ${data} cannot be read: it is neither an image folder (train/<class>/...) nor CIFAR-10's binary folder (give the run's data with --data)`);
}

/**
 * Writes a model file atomically (a temporary file beside it, then a rename); a UserError, one line, when
 * the folder is missing or not writable or the path is a folder.
 */
export function writeModelFile(out: string, bytes: Uint8Array): void {
  try {
    replaceFile(out, bytes);
  } catch (e) {
    throw new UserError(`--out ${out}: cannot write it (${fsReason(e)})`);
  }
}

/** Refuses an output that is a run's own file (a checkpoint, its metrics, run.json, a log): no other command's output replaces it. */
export function checkNotRunFile(out: string, option = '--out', example = 'model.safetensors', named = `${option} ${out}`): void {
  const kind = runFileKind(out);
  if (kind !== null) throw new UserError(`${named} is ${kind}: write it elsewhere, e.g. ${option} ${example}`);
}

/** Refuses an --out (or `option`) that cannot be written before any work is done: a missing or read-only folder, a folder as the path, a run's own file. */
export function checkWritable(out: string, option = '--out', example = 'model.safetensors'): void {
  const dir = path.dirname(path.resolve(out));
  checkNotRunFile(out, option, example);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UserError(`${option} ${out} is a folder: give a file name, e.g. ${path.join(out, example)}`);
  // `runs/x/`: a folder's name, though no folder is there
  if (/[\\/]$/.test(out)) throw new UserError(`${option} ${out} names a folder (it ends with ${out.at(-1)}), which does not exist: give a file name, e.g. ${example}`);
  if (!fs.existsSync(dir)) throw new UserError(`${option} ${out}: the folder ${dir} does not exist`);
  if (!fs.statSync(dir).isDirectory()) throw new UserError(`${option} ${out}: ${dir} is not a folder`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    if (fs.existsSync(out)) fs.accessSync(out, fs.constants.W_OK);
  } catch {
    throw new UserError(`${option} ${out}: ${fs.existsSync(out) ? 'the file' : `the folder ${dir}`} is not writable`);
  }
}
