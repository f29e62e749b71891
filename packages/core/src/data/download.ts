/**
 * `--data cifar10`: the official CIFAR-10 binary archive, downloaded on first
 * use into the cache folder, its MD5 checked, a partial download resumed with
 * an HTTP Range request, and extracted with `tar` (npm's own tar
 * implementation: it refuses paths that leave the target folder, and handles
 * gzip through minizlib). The URL and checksum are parameters, so tests serve
 * a small archive from 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tar from 'tar';
import { DataError, makeCacheDir } from './errors.js';
import { diskFull, fileError } from '../fs-errors.js';
import { cifarBinaryFiles } from './cifar-binary.js';

export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';

/**
 * The cache folder: $ALEXNET_CACHE_DIR, else $XDG_CACHE_HOME/alexnet-mp, else
 * ~/.cache/alexnet-mp (a `--cache-dir` option overrides all three).
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ALEXNET_CACHE_DIR) return env.ALEXNET_CACHE_DIR;
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'alexnet-mp');
}

export async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface DownloadOptions {
  readonly url: string;
  /** Where the verified file ends up; the partial download is `${dest}.part`. */
  readonly dest: string;
  readonly md5: string;
  /** Tries in this call (each resumes where the last stopped). Default 5. */
  readonly attempts?: number;
  /** Abort a try after this long without a byte. Default 60 s. */
  readonly idleTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

const offlineCodes = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT']);

function causeOf(e: unknown): { code?: string; message: string } {
  let c: unknown = e;
  for (let i = 0; i < 4 && c && typeof c === 'object' && 'cause' in c && (c as { cause?: unknown }).cause; i++) c = (c as { cause: unknown }).cause;
  const err = c as { code?: string; message?: string };
  return { code: err?.code, message: err?.message ?? String(c) };
}

/**
 * Downloads `url` to `dest`, resuming `${dest}.part` when present (Range:
 * bytes=N-; a server that answers 200 instead of 206 is read from the start),
 * and retrying a cut connection. The MD5 is checked before the file is
 * renamed to `dest`; a mismatch removes the partial file and throws.
 */
export async function downloadFile(o: DownloadOptions): Promise<string> {
  const log = o.log ?? (() => {});
  if (existsSync(o.dest)) return o.dest;
  const part = `${o.dest}.part`;
  makeCacheDir(dirname(o.dest));
  const attempts = o.attempts ?? 5;
  const idle = o.idleTimeoutMs ?? 60_000;
  let lastError: unknown = null;
  let connected = false;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const have = existsSync(part) ? statSync(part).size : 0;
    const ac = new AbortController();
    let timer = setTimeout(() => ac.abort(new Error(`no data for ${idle / 1000} s`)), idle);
    const fh = await open(part, 'a');
    try {
      const res = await fetch(o.url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal: ac.signal, redirect: 'follow' });
      connected = true;
      if (res.status === 416 && have > 0) {
        // the part file already holds the whole file
        await res.body?.cancel();
        break;
      }
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        throw new DataError(o.url, `downloading ${o.url}: HTTP ${res.status} ${res.statusText}`);
      }
      let offset = have;
      if (res.status === 200 && have > 0) {
        log(`${o.url}: the server does not resume (HTTP 200 to a Range request): downloading from the start`);
        await fh.truncate(0);
        offset = 0;
      } else if (have > 0) {
        log(`resuming ${o.url} at ${(have / 2 ** 20).toFixed(1)} MiB`);
      }
      const length = Number(res.headers.get('content-length') ?? NaN);
      const total = Number.isFinite(length) ? offset + length : NaN;
      let lastLog = performance.now();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(timer);
        timer = setTimeout(() => ac.abort(new Error(`no data for ${idle / 1000} s`)), idle);
        await fh.write(chunk, 0, chunk.length, offset);
        offset += chunk.length;
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`downloading ${o.url}: ${(offset / 2 ** 20).toFixed(1)}${Number.isFinite(total) ? ` of ${(total / 2 ** 20).toFixed(1)}` : ''} MiB`);
        }
      }
      if (Number.isFinite(total) && offset < total) throw new Error(`connection closed at ${offset} of ${total} bytes`);
      lastError = null;
      break;
    } catch (e) {
      if (e instanceof DataError) throw e;
      // a full disk is not a network hiccup: retrying cannot help; what was fetched stays for the next run
      if (diskFull(e)) throw fileError('write', part, e, `free space (or give --cache-dir on a larger disk) and run again: the download resumes from the ${(statSync(part).size / 2 ** 20).toFixed(1)} MiB kept`);
      lastError = e;
      const c = causeOf(e);
      // never connected and the name or the network is not there (offline): one more try, not five
      if (!connected && c.code !== undefined && offlineCodes.has(c.code) && attempt >= 2) break;
      log(`download of ${o.url} interrupted (try ${attempt} of ${attempts}): ${c.message}`);
      if (attempt < attempts) await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    } finally {
      clearTimeout(timer);
      await fh.close();
    }
  }
  if (lastError !== null) {
    const c = causeOf(lastError);
    const offline = !connected && (c.code === undefined || offlineCodes.has(c.code));
    // an empty part file is no start to resume from: not kept, not promised
    const kept = existsSync(part) ? statSync(part).size : 0;
    if (kept === 0) rmSync(part, { force: true });
    const resume = kept > 0 ? `The ${(kept / 2 ** 20).toFixed(1)} MiB fetched are kept in ${part} and the next run resumes from there. ` : '';
    throw new DataError(
      o.url,
      `cannot download ${o.url}: ${c.message}${c.code ? ` (${c.code})` : ''}${offline ? ' - offline, or the host is unreachable' : ''}. ` +
        `${resume}Or download the archive elsewhere, extract it and pass ` +
        `--data /path/to/cifar-10-batches-bin, or pass an image folder (train/<class>/*.jpg and test/<class>/ or val/<class>/)`,
      { cause: lastError },
    );
  }
  const got = await md5File(part);
  if (got !== o.md5.toLowerCase()) {
    rmSync(part, { force: true });
    throw new DataError(o.url, `checksum mismatch for ${o.url}: MD5 ${got}, expected ${o.md5}; the download was removed (run again to fetch it afresh)`);
  }
  try {
    renameSync(part, o.dest);
  } catch (e) {
    throw fileError('rename the download to', o.dest, e);
  }
  return o.dest;
}

export interface Cifar10Options {
  readonly cacheDir?: string;
  readonly url?: string;
  readonly md5?: string;
  readonly attempts?: number;
  readonly idleTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

/**
 * The extracted `cifar-10-batches-bin` folder in the cache, downloading and
 * extracting the archive the first time. Returns the folder's path.
 */
export async function ensureCifar10(o: Cifar10Options = {}): Promise<string> {
  const root = join(o.cacheDir ?? defaultCacheDir(), 'cifar10');
  const dir = join(root, 'cifar-10-batches-bin');
  const done = join(root, '.extracted');
  if (existsSync(done) && existsSync(dir)) {
    cifarBinaryFiles(dir);
    return dir;
  }
  makeCacheDir(root);
  const url = o.url ?? CIFAR10_URL;
  const archive = join(root, 'cifar-10-binary.tar.gz');
  o.log?.(`CIFAR-10: fetching ${url} into ${root} (once)`);
  await downloadFile({ url, dest: archive, md5: o.md5 ?? CIFAR10_MD5, attempts: o.attempts, idleTimeoutMs: o.idleTimeoutMs, log: o.log });
  const tmp = join(root, `extract-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  makeCacheDir(tmp);
  try {
    await tar.x({ file: archive, cwd: tmp, strict: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // a full disk leaves a sound archive: kept, so that the next run only extracts it
    if (diskFull(e)) throw fileError('extract into', tmp, e, `free space (or give --cache-dir on a larger disk) and run again: the archive ${archive} is kept`);
    rmSync(archive, { force: true });
    throw new DataError(archive, `cannot extract ${archive}: ${(e as Error).message}; it was removed, run again to download it afresh`, { cause: e });
  }
  const extracted = join(tmp, 'cifar-10-batches-bin');
  if (!existsSync(extracted)) {
    rmSync(tmp, { recursive: true, force: true });
    throw new DataError(archive, `${archive} has no cifar-10-batches-bin/ folder: is it the CIFAR-10 binary version?`);
  }
  cifarBinaryFiles(extracted);
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(extracted, dir);
    rmSync(tmp, { recursive: true, force: true });
    rmSync(archive, { force: true });
    writeFileSync(done, `${url}\n`);
  } catch (e) {
    throw fileError('finish the extraction into', dir, e);
  }
  o.log?.(`CIFAR-10: extracted to ${dir}`);
  return dir;
}
