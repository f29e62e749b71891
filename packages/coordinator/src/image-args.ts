/**
 * The image arguments of `alexnet predict`: a file stays as it is (a missing or unreadable one is reported
 * by the decoder, in its place); a folder becomes the image files under it (.jpg, .jpeg, .png, any depth,
 * sorted by path; links to image files taken as the files; hidden files and folders, and symbolic links to
 * folders, left out), or one line saying it
 * holds none.
 */
import fs from 'node:fs';
import path from 'node:path';
import { IMAGE_EXTENSIONS, isImageName } from '@alexnet-mp/core/data';
import { fsReason } from '@alexnet-mp/core';

export type ImageArg = { readonly file: string } | { readonly folder: string; readonly error: string };

const linksToFolder = (p: string): boolean => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false; // leads nowhere (dangling, a loop): taken as a file the decoder reports
  }
};

/** The image files under `dir` (links to image files too), sorted by path. */
export function imagesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    const entries = fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) walk(p);
      // a link to an image counts as the image (one that leads nowhere too: the decoder says so in its place)
      else if ((e.isFile() || (e.isSymbolicLink() && !linksToFolder(p))) && isImageName(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export function expandImageArgs(args: readonly string[]): ImageArg[] {
  return args.flatMap((a): ImageArg[] => {
    let isDir = false;
    try {
      isDir = fs.statSync(a).isDirectory();
    } catch {
      // not there: the decoder says so in its place
    }
    if (!isDir) return [{ file: a }];
    let files: string[];
    try {
      files = imagesUnder(a);
    } catch (e) {
      return [{ folder: a, error: `${a}: cannot list the folder (${fsReason(e)})` }];
    }
    return files.length > 0 ? files.map((file) => ({ file })) : [{ folder: a, error: `${a}: a folder with no image files (${IMAGE_EXTENSIONS.join(', ')}) in it or below` }];
  });
}
