/**
 * `--data cifar10`: download, checksum, resume and extraction against a local
 * HTTP server on 127.0.0.1 serving a small archive built here. Nothing here
 * touches the internet.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tar from 'tar';
import { CIFAR10_MD5, CIFAR10_URL, DataError, defaultCacheDir, downloadFile, ensureCifar10, loadCifarFiles, cifarBinaryFiles, openDataset } from '../src/data/index.js';
import { tempDir, writeCifarFolder } from './data-fixtures.js';
import { reservedPort } from '../../../test/ports.js';

/** A small cifar-10-binary.tar.gz (cifar-10-batches-bin/ with 4 images per batch) and its MD5. */
async function smallArchive(dir: string): Promise<{ bytes: Buffer; md5: string; train: ReturnType<typeof writeCifarFolder>['train'] }> {
  const { train } = writeCifarFolder(join(dir, 'src', 'cifar-10-batches-bin'), 4);
  const file = join(dir, 'small.tar.gz');
  await tar.c({ gzip: true, file, cwd: join(dir, 'src') }, ['cifar-10-batches-bin']);
  const bytes = readFileSync(file);
  return { bytes, md5: createHash('md5').update(bytes).digest('hex'), train };
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

async function serve(t: import('ava').ExecutionContext, handler: Handler): Promise<{ url: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cifar-10-binary.tar.gz`, requests };
}

/** Serves `bytes`, honouring Range: bytes=N-. */
function sendRange(bytes: Buffer, req: IncomingMessage, res: ServerResponse): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) {
    const from = Number(m[1]);
    if (from >= bytes.length) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': bytes.length - from, 'content-range': `bytes ${from}-${bytes.length - 1}/${bytes.length}` });
    res.end(bytes.subarray(from));
  } else {
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  }
}

test('the official archive and checksum are the defaults; the cache folder follows XDG_CACHE_HOME', (t) => {
  t.is(CIFAR10_URL, 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz');
  t.is(CIFAR10_MD5, 'c32a1d4ab5d03f1284b67883e8d87530');
  t.is(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' }), '/xdg/alexnet-mp');
  t.is(defaultCacheDir({ XDG_CACHE_HOME: '/xdg', ALEXNET_CACHE_DIR: '/mine' }), '/mine');
  t.regex(defaultCacheDir({ HOME: '/home/u' }), /\.cache\/alexnet-mp$/);
});

test('download, checksum, extract once; the second use reads the cache', async (t) => {
  const dir = tempDir(t);
  const a = await smallArchive(dir);
  const { url, requests } = await serve(t, (req, res) => sendRange(a.bytes, req, res));
  const cacheDir = join(dir, 'cache');
  const logs: string[] = [];
  const got = await ensureCifar10({ cacheDir, url, md5: a.md5, log: (l) => logs.push(l) });
  t.is(got, join(cacheDir, 'cifar10', 'cifar-10-batches-bin'));
  t.deepEqual(loadCifarFiles(cifarBinaryFiles(got).train).pixels, a.train.pixels);
  t.is(requests.length, 1);
  t.deepEqual(readdirSync(join(cacheDir, 'cifar10')).sort(), ['.extracted', 'cifar-10-batches-bin'], 'the archive and temporary folders are gone');
  await ensureCifar10({ cacheDir, url, md5: a.md5 });
  t.is(requests.length, 1, 'no second download');
  // through openDataset('cifar10')
  const d = await openDataset('cifar10', { size: 32, cacheDir, download: { url, md5: a.md5 } });
  t.is(d.kind, 'cifar-binary');
  t.is(d.trainCount, 20);
});

test('a wrong checksum is refused and nothing is kept', async (t) => {
  const dir = tempDir(t);
  const a = await smallArchive(dir);
  const { url } = await serve(t, (req, res) => sendRange(a.bytes, req, res));
  const cacheDir = join(dir, 'cache');
  const e = await t.throwsAsync(ensureCifar10({ cacheDir, url, md5: '0'.repeat(32) }), { instanceOf: DataError });
  t.regex(e.message, new RegExp(`checksum mismatch for .*: MD5 ${a.md5}, expected 0{32}`));
  t.deepEqual(readdirSync(join(cacheDir, 'cifar10')), []);
});

test('a download cut short is resumed with a Range request', async (t) => {
  const dir = tempDir(t);
  const a = await smallArchive(dir);
  const half = Math.floor(a.bytes.length / 2);
  const { url, requests } = await serve(t, (req, res, n) => {
    if (n === 1) {
      // announce the whole file, send half, cut the connection
      res.writeHead(200, { 'content-length': a.bytes.length });
      res.write(a.bytes.subarray(0, half), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    sendRange(a.bytes, req, res);
  });
  const logs: string[] = [];
  const dest = join(dir, 'dl', 'a.tar.gz');
  await downloadFile({ url, dest, md5: a.md5, log: (l) => logs.push(l) });
  t.deepEqual(readFileSync(dest), a.bytes);
  t.is(requests.length, 2);
  t.is(requests[0]!.headers.range, undefined);
  t.is(requests[1]!.headers.range, `bytes=${half}-`);
  t.true(logs.some((l) => /interrupted/.test(l)) && logs.some((l) => /resuming/.test(l)), logs.join('\n'));
  t.false(existsSync(`${dest}.part`));
});

test('a partial file left by an earlier run is resumed; a server that ignores Range restarts from zero', async (t) => {
  const dir = tempDir(t);
  const a = await smallArchive(dir);
  let cut = true;
  const resumable = await serve(t, (req, res) => {
    if (cut) {
      res.writeHead(200, { 'content-length': a.bytes.length });
      res.write(a.bytes.subarray(0, 1000), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    sendRange(a.bytes, req, res);
  });
  const dest = join(dir, 'dl', 'a.tar.gz');
  const e = await t.throwsAsync(downloadFile({ url: resumable.url, dest, md5: a.md5, attempts: 1 }), { instanceOf: DataError });
  t.regex(e.message, /The 0\.0 MiB fetched are kept in .*a\.tar\.gz\.part and the next run resumes from there/);
  t.is(readFileSync(`${dest}.part`).length, 1000);
  cut = false;
  await downloadFile({ url: resumable.url, dest, md5: a.md5 });
  t.is(resumable.requests.at(-1)!.headers.range, 'bytes=1000-');
  t.deepEqual(readFileSync(dest), a.bytes);

  // a server without Range support answers 200: the part file is rewritten from the start
  const dest2 = join(dir, 'dl', 'b.tar.gz');
  let first = true;
  const plain = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': a.bytes.length });
    if (first) {
      first = false;
      res.write(a.bytes.subarray(0, 1500), () => setTimeout(() => res.socket?.destroy(), 20));
    } else res.end(a.bytes);
  });
  await downloadFile({ url: plain.url, dest: dest2, md5: a.md5 });
  t.deepEqual(readFileSync(dest2), a.bytes);
  t.is(plain.requests[1]!.headers.range, 'bytes=1500-');
});

test('offline: a clear DataError saying how to pass a local folder instead', async (t) => {
  const dir = tempDir(t);
  // a port nobody listens on, from below the ephemeral range (a port freed after listen(0) may be taken again
  // meanwhile; fetch refuses the well-known ones as "bad port")
  const closedUrl = `http://127.0.0.1:${await reservedPort()}/cifar-10-binary.tar.gz`;
  const { url } = await serve(t, (_req, res) => res.writeHead(404).end());
  const e = await t.throwsAsync(ensureCifar10({ cacheDir: dir, url: closedUrl, md5: CIFAR10_MD5, attempts: 2 }), { instanceOf: DataError });
  t.regex(e.message, /cannot download http:\/\/127\.0\.0\.1:\d+\/.*ECONNREFUSED.*offline.*--data \/path\/to\/cifar-10-batches-bin.*image folder/s);
  // nothing was fetched: nothing is kept or promised, and an unreachable host is tried twice, not five times
  t.notRegex(e.message, /kept in|resumes/);
  t.false(existsSync(join(dir, 'cifar-10-binary.tar.gz.part')) || (existsSync(join(dir, 'cifar10')) && readdirSync(join(dir, 'cifar10')).some((f) => f.endsWith('.part'))));
  const said: string[] = [];
  const unreachable = await t.throwsAsync(downloadFile({ url: closedUrl, dest: join(dir, 'y'), md5: 'x', attempts: 5, log: (l) => said.push(l) }), { instanceOf: DataError });
  t.regex(unreachable.message, /ECONNREFUSED/);
  t.deepEqual(said.map((l) => /try \d+ of \d+/.exec(l)?.[0]), ['try 1 of 5'], 'the second try is the last');
  const e2 = await t.throwsAsync(downloadFile({ url, dest: join(dir, 'x'), md5: 'x' }), { instanceOf: DataError });
  t.regex(e2.message, /HTTP 404/);
});

// mounting a small tmpfs needs root (CI runs as root)
(process.getuid?.() === 0 ? test : test.skip)('a disk that fills during the download or the extraction: one FileError naming the file, no retries, what was fetched kept', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdirSync, statSync, writeFileSync } = await import('node:fs');
  const { FileError } = await import('../src/fs-errors.js');
  const dir = tempDir(t);
  const a = await smallArchive(dir);
  // a download larger than the disk: 256 KiB of archive-like bytes onto a 64 KiB tmpfs
  const big = Buffer.concat([a.bytes, Buffer.alloc(256 * 1024, 7)]);
  const { url, requests } = await serve(t, (req, res) => sendRange(big, req, res));
  const cacheDir = join(dir, 'small');
  mkdirSync(cacheDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', cacheDir]);
  t.teardown(() => execFileSync('umount', ['-l', cacheDir]));
  const e = await t.throwsAsync(ensureCifar10({ cacheDir, url, md5: createHash('md5').update(big).digest('hex') }));
  t.true(e instanceof FileError, String(e));
  t.regex(e!.message, /^cannot write \S+cifar-10-binary\.tar\.gz\.part: no space left on the device \(ENOSPC\); free space \(or give --cache-dir on a larger disk\) and run again: the download resumes from the [\d.]+ MiB kept$/);
  t.is(requests.length, 1, 'no retry on a full disk');
  t.true(statSync(join(cacheDir, 'cifar10', 'cifar-10-binary.tar.gz.part')).size > 0, 'what was fetched is kept');

  // the archive fits, its extraction does not: the archive is kept
  execFileSync('umount', ['-l', cacheDir]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', cacheDir]);
  const padded = join(dir, 'pad');
  mkdirSync(join(padded, 'cifar-10-batches-bin'), { recursive: true });
  writeFileSync(join(padded, 'cifar-10-batches-bin', 'data_batch_1.bin'), Buffer.alloc(512 * 1024));
  await tar.c({ gzip: true, file: join(dir, 'padded.tar.gz'), cwd: padded }, ['cifar-10-batches-bin']);
  const zipped = readFileSync(join(dir, 'padded.tar.gz'));
  const second = await serve(t, (req, res) => sendRange(zipped, req, res));
  const e2 = await t.throwsAsync(ensureCifar10({ cacheDir, url: second.url, md5: createHash('md5').update(zipped).digest('hex') }));
  t.true(e2 instanceof FileError, String(e2));
  t.regex(e2!.message, /^cannot extract into \S+: no space left on the device \(ENOSPC\); free space .* the archive \S+cifar-10-binary\.tar\.gz is kept$/);
  t.true(existsSync(join(cacheDir, 'cifar10', 'cifar-10-binary.tar.gz')));
});
