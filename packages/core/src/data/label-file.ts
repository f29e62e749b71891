/**
 * Held-out images in one flat folder, their classes in a labels file: how ILSVRC-2012's validation set
 * comes (50,000 `ILSVRC2012_val_*.JPEG` in one folder). image-folder.ts takes such a `val/` (or `test/`)
 * when it has image files and no class folders, and reads the classes from the first of LABEL_FILES found
 * in that folder, then in the data folder:
 *
 * - Kaggle's `LOC_val_solution.csv`: a header `ImageId,PredictionString`, then `ID,WNID x y x y ...` rows;
 *   the class is the first word of the second field and ID is the file name without its extension;
 * - any of the others: one image a line, `FILE CLASS` (separated by a comma, a tab or spaces; further fields
 *   are ignored), FILE with or without its extension, CLASS a training class folder's name or its index
 *   (0-based, in the sorted order the classes take: Caffe's `val.txt` numbers ImageNet's classes so);
 *   a first line that names no class is taken as a header; empty lines and lines starting `#` are skipped.
 *
 * The devkit's `ILSVRC2012_validation_ground_truth.txt` (one number a line, no file names, in the devkit's
 * own class order) is recognised and refused with what to use instead.
 */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { DataError } from './errors.js';

/** The labels files a flat held-out folder may have, in the order they are looked for. */
export const LABEL_FILES = ['labels.csv', 'labels.txt', 'LOC_val_solution.csv', 'val.txt'] as const;

/** A labels file read: class index by file name and by file name without its extension. */
export interface LabelFile {
  readonly path: string;
  /** Entries in the file. */
  readonly count: number;
  /** The label of an image file, by its name; undefined when the file has no line for it; a DataError naming the line when its class is not one of the training split's. */
  labelOf(fileName: string): number | undefined;
}

const stem = (name: string) => name.slice(0, name.length - extname(name).length);

/** Reads and checks the labels file at `path` against the training split's class folders. */
export async function readLabelFile(path: string, classes: readonly string[]): Promise<LabelFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new DataError(path, `cannot read the labels file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseLabelFile(text, path, classes);
}

/** Parses the text of a labels file (`path` names it in errors), as readLabelFile does. */
export function parseLabelFile(text: string, path: string, classes: readonly string[]): LabelFile {
  const index = new Map(classes.map((c, i) => [c, i]));
  const lines = text.split(/\r?\n/);
  const content = lines.map((l, i) => ({ line: l.trim(), at: i + 1 })).filter(({ line }) => line !== '' && !line.startsWith('#'));
  if (content.length === 0) throw new DataError(path, `the labels file ${path} is empty: expected a line "FILE CLASS" for each held-out image`);
  if (content.every(({ line }) => /^\d+$/.test(line))) {
    throw new DataError(
      path,
      `${path} has one number a line and no file names (the ImageNet devkit's ground truth, whose class numbers follow the devkit's own order, not the sorted class folders): ` +
        `give "FILE CLASS" lines (CLASS a class folder's name, e.g. "ILSVRC2012_val_00000001.JPEG n01751748"), Kaggle's LOC_val_solution.csv, or sort the images into class folders`,
    );
  }
  const kaggle = /^imageid\s*,\s*predictionstring$/i.test(content[0]!.line);
  /**
   * A line's class, resolved when an image of the folder asks for it: the file may list more images than the
   * folder holds (the whole validation set for a subset of its classes), whose classes are never checked.
   */
  const classOf = (word: string, at: number): number | undefined => {
    const named = index.get(word);
    // a file whose every class word is a folder's name means the names, even where they are numbers too
    if (named !== undefined && allNames) return named;
    if (/^\d+$/.test(word)) {
      const n = Number(word);
      // class folders named by numbers that are not their place in the sorted order ("1", "2", "3"; "0".."10"):
      // a file of numbers, some of them folder names, does not say which it means
      if (named !== undefined && named !== n) {
        throw new DataError(
          path,
          `${path}:${at}: class "${word}" is both a class folder's name and a class number, which count from 0 in the folders' sorted order (number ${word} is ${n < classes.length ? `folder "${classes[n]}"` : 'past the classes'}); ` +
            `not every line names a class folder, so the file does not say which it means: write each class as its folder's name, or give the class folders names that are not numbers`,
        );
      }
      if (n < classes.length) return n;
      throw new DataError(path, `${path}:${at}: class number ${n} is past the training split's ${classes.length} classes (numbers count from 0 in the class folders' sorted order)`);
    }
    if (named !== undefined) return named;
    throw new DataError(path, `${path}:${at}: class "${word.slice(0, 40)}" is not among the training split's ${classes.length === 1 ? 'one class folder (nor the class number 0)' : `${classes.length} class folders (nor a class number below ${classes.length})`}`);
  };
  /** A file's lines: every class word it was given, with its line (resolved when an image asks). */
  type Entry = { word: string; at: number; file: string }[];
  const byName = new Map<string, Entry>();
  const byStem = new Map<string, Entry>();
  const add = (map: Map<string, Entry>, key: string, word: string, at: number, file: string) => {
    const e = map.get(key) ?? [];
    e.push({ word, at, file });
    map.set(key, e);
  };
  /** Every line's class word (for allNames: set once every line is read, before any class is resolved). */
  const words: string[] = [];
  content.forEach(({ line, at }, k) => {
    if (kaggle && k === 0) return;
    let file: string;
    let word: string;
    if (kaggle) {
      const comma = line.indexOf(',');
      file = line.slice(0, comma).trim();
      word = line.slice(comma + 1).trim().split(/\s+/)[0] ?? '';
      if (comma < 0 || file === '' || word === '') throw new DataError(path, `${path}:${at}: expected "ImageId,WNID ..." as in Kaggle's LOC_val_solution.csv, got "${line.slice(0, 80)}"`);
    } else {
      const fields = line.split(/\s*[,\t]\s*|\s+/);
      if (fields.length < 2 || fields[0] === '' || fields[1] === '') throw new DataError(path, `${path}:${at}: expected "FILE CLASS", got "${line.slice(0, 80)}"`);
      file = basename(fields[0]!);
      word = fields[1]!;
      // a first line naming no class is a header ("file,label")
      if (k === 0 && !index.has(word) && !/^\d+$/.test(word)) return;
    }
    add(byName, file, word, at, file);
    add(byStem, stem(file), word, at, file);
    words.push(word);
  });
  const allNames = words.every((w) => index.has(w));
  /** The class of a file's lines: all of them must agree (by name or number); `name` for the message. */
  const resolve = (name: string, e: Entry): number => {
    const first = classOf(e[0]!.word, e[0]!.at)!;
    for (const other of e.slice(1)) {
      const c = classOf(other.word, other.at)!;
      if (c !== first) throw new DataError(path, `${path}:${other.at}: ${name} is given class ${classes[c]} here and ${classes[first]} on line ${e[0]!.at}`);
    }
    return first;
  };
  return {
    path,
    count: byName.size,
    labelOf: (name) => {
      const e = byName.get(name);
      if (e) return resolve(name, e);
      // by its name without extension: two files of one stem with different classes (x.jpg, x.png) name neither
      const s = byStem.get(stem(name));
      if (s === undefined) return undefined;
      // lines that name it without its extension (Kaggle's ids, "ID CLASS" lists): they must agree, as whole names' lines do
      const bare = s.filter((x) => x.file === stem(name));
      if (bare.length > 0) return resolve(name, bare);
      const classesOf = new Set(s.map((x) => classOf(x.word, x.at)));
      return classesOf.size === 1 ? [...classesOf][0] : undefined;
    },
  };
}
