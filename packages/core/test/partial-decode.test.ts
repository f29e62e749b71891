/**
 * A decoding into the cache cut short goes on where it stopped (partial-decode.ts): after a process killed
 * part way, and after a failure in this process, the finished cache equals one decoded in one go, image for
 * image, with the same labels, skipped files and colour statistics; a partial file of a live process is
 * left alone; the room a cache needs is checked before decoding.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  DataError,
  cacheFileBytes,
  cachePathFor,
  checkCacheRoom,
  decodeProgressLine,
  decodeToCache,
  journalPath,
  listImageSplit,
  openCacheFile,
  openDataset,
  partialPath,
  readStatsFile,
  statsPathFor,
  STALE_MS,
  pidNamespace,
  processStart,
  thisHost,
  type DecodeJournal,
  type DecodeOptions,
  type ImageItem,
} from '../src/data/index.js';
import { gradientImage, repoRoot, sharedDatasets, tempDir, writeFile } from './data-fixtures.js';

const run = promisify(execFile);

/** imagenette-mini's 300 training images with an unreadable file at index 120. */
async function listing(t: Parameters<typeof tempDir>[0]): Promise<{ items: ImageItem[]; classes: readonly string[]; bad: string }> {
  const split = await listImageSplit(join(sharedDatasets, 'imagenette-mini', 'train'));
  const bad = writeFile(join(tempDir(t), 'broken.jpg'), 'not a jpeg');
  const items = [...split.items];
  items.splice(120, 0, { path: bad, label: 3 });
  return { items, classes: split.classes, bad };
}

function sameCache(t: Parameters<typeof tempDir>[0], a: string, b: string): void {
  const x = openCacheFile(a);
  const y = openCacheFile(b);
  t.is(y.count, x.count);
  t.deepEqual([...y.labels], [...x.labels]);
  let differ = 0;
  for (let i = 0; i < x.count; i++) if (Buffer.compare(Buffer.from(x.image(i)), Buffer.from(y.image(i))) !== 0) differ++;
  t.is(differ, 0, 'every image the same');
  t.deepEqual(readStatsFile(statsPathFor(b)), readStatsFile(statsPathFor(a)), 'the colour statistics the same');
  t.true(readFileSync(a).equals(readFileSync(b)), 'the cache files the same, byte for byte');
}

/** The listing's options, a cache decoded in one go from it, and the path of another to decode in a fresh folder. */
async function withReference(t: Parameters<typeof tempDir>[0]) {
  const { items, classes } = await listing(t);
  const base = { items, classes, size: 16, source: 'imagenette-mini/train', stats: true };
  const ref = join(tempDir(t), 'ref.u8');
  await decodeToCache({ ...base, path: ref });
  const dir = tempDir(t);
  return { items, base, ref, dir, path: join(dir, 'x.u8') };
}

const leftOver = (dir: string) => readdirSync(dir).filter((f) => f.includes('.partial-'));

test('a decoding killed part way goes on from its journal, and the cache equals one decoded in one go', async (t) => {
  const { items, classes, bad } = await listing(t);
  const base = { items, classes, size: 16, source: 'imagenette-mini/train', stats: true, concurrency: 4 };
  const ref = join(tempDir(t), 'ref.u8');
  await decodeToCache({ ...base, path: ref });

  const dir = tempDir(t);
  const path = join(dir, 'x.u8');
  const args = writeFile(join(tempDir(t), 'args.json'), JSON.stringify({ ...base, path } satisfies DecodeOptions));
  const killed = await run(process.execPath, ['--import', 'tsx', join(repoRoot, 'packages/core/test/decode-killed.ts'), args]).then(
    () => null,
    (e: { signal?: string }) => e.signal,
  );
  t.is(killed, 'SIGKILL', 'the helper killed itself at the unreadable file');
  t.false(existsSync(path));
  const partials = leftOver(dir);
  t.is(partials.length, 2, `a partial file and its journal: ${partials.join(', ')}`);
  const journal = JSON.parse(readFileSync(join(dir, partials.find((f) => f.endsWith('.json'))!), 'utf8')) as DecodeJournal;
  t.is(journal.done, 120);
  t.is(journal.written, 120);

  let resumedAt = -1;
  const warned: string[] = [];
  const r = await decodeToCache({ ...base, path, onResume: (d) => (resumedAt = d), onWarning: (w) => warned.push(w.path) });
  t.is(resumedAt, 120);
  t.deepEqual(warned, [bad]);
  t.deepEqual(r.header.skipped.map((w) => w.path), [bad]);
  sameCache(t, ref, path);
  t.deepEqual(leftOver(dir), [], 'the partial file became the cache, its journal gone');
});

test('a decoding that fails keeps its partial file and says so; the next one in the same process goes on from it', async (t) => {
  const { base, ref, dir, path } = await withReference(t);
  const e = await t.throwsAsync(
    decodeToCache({
      ...base,
      path,
      onWarning: () => {
        throw new Error('the disk went away');
      },
    }),
  );
  t.regex(e.message, /^the disk went away; the 120 images decoded so far are kept, and the next run goes on from them$/);
  const kept = leftOver(dir);
  t.is(kept.length, 2, kept.join(', '));
  const left = JSON.parse(readFileSync(join(dir, kept.find((f) => f.endsWith('.json'))!), 'utf8')) as DecodeJournal;
  t.true(left.closed, 'left closed for the next decoding, whichever process runs it');
  t.is(left.written, 120);
  let resumedAt = -1;
  await decodeToCache({ ...base, path, onResume: (d) => (resumedAt = d) });
  t.is(resumedAt, 120);
  sameCache(t, ref, path);
  t.deepEqual(leftOver(dir), []);
});

/** A partial decoding of `written` images (zeros) by another writer, with its journal. */
function otherWriter(path: string, items: number, who: { host?: string; pid: number }, o: { written: number; closed: boolean; bytes?: number }): string {
  const theirs = partialPath(path, { host: who.host, pid: who.pid, tag: 'abc123' });
  writeFileSync(theirs, Buffer.alloc(o.bytes ?? 4096 + o.written * 768));
  const stats = { n: o.written, pixels: o.written * 256, s: [0, 0, 0], ss: [0, 0, 0, 0, 0, 0] };
  const here = who.host === undefined;
  const journal = { version: 1, host: who.host ?? thisHost(), ns: here ? pidNamespace() : '', pid: who.pid, started: here ? processStart(who.pid) : '', closed: o.closed, items, size: 16, done: o.written, written: o.written, skipped: [], stats };
  writeFileSync(journalPath(theirs), JSON.stringify(journal));
  return theirs;
}

test("a partial file someone still writes is left alone: a live process here, a fresh journal of another machine", async (t) => {
  const { items, classes } = await listing(t);
  const dir = tempDir(t);
  const path = join(dir, 'x.u8');
  // the parent of this test process is alive; the other machine's journal was just written
  const here = otherWriter(path, items.length, { pid: process.ppid }, { written: 10, closed: false });
  const there = otherWriter(path, items.length, { host: 'elsewhere', pid: 1 }, { written: 20, closed: false });
  let resumed = false;
  await decodeToCache({ items, classes, size: 16, path, source: 's', onResume: () => (resumed = true) });
  t.false(resumed);
  for (const f of [here, there]) t.true(existsSync(f) && existsSync(journalPath(f)), f);
  t.is(openCacheFile(path).count, items.length - 1);
});

test('a live process of this machine keeps its partial file however old its journal (a stopped job); a pid now another process\'s does not', async (t) => {
  const { items, classes } = await listing(t);
  for (const how of ['stopped', 'reused'] as const) {
    const dir = tempDir(t);
    const path = join(dir, 'x.u8');
    const theirs = otherWriter(path, items.length, { pid: process.ppid }, { written: 10, closed: false });
    const old = new Date(Date.now() - STALE_MS - 60_000);
    utimesSync(journalPath(theirs), old, old);
    if (how === 'reused') {
      // the journal's writer started (this boot) at another time than the process that has its pid now
      const j = JSON.parse(readFileSync(journalPath(theirs), 'utf8'));
      writeFileSync(journalPath(theirs), JSON.stringify({ ...j, started: String(j.started).replace(/:\d+$/, ':1') }));
    }
    let resumedAt = -1;
    await decodeToCache({ items, classes, size: 16, path, source: 's', onResume: (d) => (resumedAt = d) });
    t.is(resumedAt, how === 'stopped' ? -1 : 10, how);
    t.is(existsSync(theirs), how === 'stopped', `${how}: its file ${how === 'stopped' ? 'left alone' : 'taken over'}`);
  }
});

test('once the cache is in place, what other decodings of it left and nobody writes is removed', async (t) => {
  const { items, classes } = await listing(t);
  const dir = tempDir(t);
  const path = join(dir, 'x.u8');
  // closed, but of another listing's length: never taken up
  const stale = otherWriter(path, items.length + 5, { host: 'elsewhere', pid: 1 }, { written: 10, closed: true });
  const live = otherWriter(path, items.length, { pid: process.ppid }, { written: 10, closed: false });
  await decodeToCache({ items, classes, size: 16, path, source: 's' });
  t.false(existsSync(stale) || existsSync(journalPath(stale)), 'the abandoned one removed');
  t.true(existsSync(live), 'one still written is left to its writer');
});

test('a partial file nobody writes is taken up: closed by its writer, or its journal not renewed for 10 minutes', async (t) => {
  const { items, classes } = await listing(t);
  for (const how of ['closed', 'stale'] as const) {
    const dir = tempDir(t);
    const path = join(dir, 'x.u8');
    const theirs = otherWriter(path, items.length, { host: 'elsewhere', pid: 1 }, { written: 10, closed: how === 'closed' });
    if (how === 'stale') utimesSync(journalPath(theirs), new Date(Date.now() - STALE_MS - 60_000), new Date(Date.now() - STALE_MS - 60_000));
    let resumedAt = -1;
    await decodeToCache({ items, classes, size: 16, path, source: 's', onResume: (d) => (resumedAt = d), stats: true });
    t.is(resumedAt, 10, how);
    t.false(existsSync(theirs), `${how}: renamed for the new writer, then into the cache`);
    t.deepEqual(leftOver(dir), []);
  }
});

test('a partial file shorter than its journal says (data lost in a crash of the machine) is not taken up: the decoding starts afresh', async (t) => {
  const { items, base, ref, dir, path } = await withReference(t);
  otherWriter(path, items.length, { host: 'elsewhere', pid: 1 }, { written: 50, closed: true, bytes: 4096 + 20 * 768 });
  let resumed = false;
  await decodeToCache({ ...base, path, onResume: () => (resumed = true) });
  t.false(resumed);
  sameCache(t, ref, path);
  t.deepEqual(leftOver(dir), []);
});
test('the room a cache needs is checked before decoding; progress lines give the rate and the time left', (t) => {
  // ILSVRC-2012's training set at the paper's stored size
  const bytes = cacheFileBytes(1_281_167, 256);
  t.true(bytes > 251.8e9 && bytes < 252.0e9, `${bytes}`);
  const e = t.throws(() => checkCacheRoom('/data/imagenet/train', 1_281_167, 256, '/cache/decoded/x.u8', bytes, 53.1e9), { instanceOf: DataError });
  t.is(e.message, 'decoding the 1281167 images of /data/imagenet/train at 256x256 needs 251.9 GB in /cache/decoded, which has 53.1 GB free: free space, or set --cache-dir (or ALEXNET_CACHE_DIR) to a folder on a larger disk');
  t.notThrows(() => checkCacheRoom('d', 10, 16, '/c/x.u8', 1e6, 2e6));
  // an unfinished decoding of another cache (a folder since changed) that nobody writes is named
  const dir = tempDir(t);
  otherWriter(join(dir, 'old.u8'), 500, { host: 'elsewhere', pid: 1 }, { written: 300, closed: true });
  const takenUp = otherWriter(join(dir, 'x.u8'), 500, { host: 'elsewhere', pid: 1 }, { written: 300, closed: true });
  // the one the decoding takes up is not named
  const named = t.throws(() => checkCacheRoom('d', 1000, 16, join(dir, 'x.u8'), 1e9, 1e6, [takenUp]), { instanceOf: DataError });
  t.regex(named.message, /; there, 234\.5 kB are taken by 1 unfinished decoding that no process is writing \(old\.u8\.partial-elsewhere-1-abc123\): remove those of folders or sizes you no longer use$/);
  // two splits checked together: neither one's own unfinished decoding is named
  const both = t.throws(() => checkCacheRoom('d', 1000, 16, join(dir, 'x.u8'), 1e9, 1e6, [takenUp, join(dir, 'old.u8.partial-elsewhere-1-abc123')]), { instanceOf: DataError });
  t.false(both.message.includes('unfinished'), both.message);
  t.notThrows(() => checkCacheRoom('d', 10, 16, '/c/x.u8', 1e6, null), 'unknown free space: no refusal');
  t.is(decodeProgressLine(120_000, 1_281_167, 120_000, 141), '120000 of 1281167 (9%), 851 images/s, about 23 min left');
  t.is(decodeProgressLine(700_000, 1_281_167, 100_000, 100), '700000 of 1281167 (54%), 1000 images/s, about 10 min left');
  t.is(decodeProgressLine(10, 100, 10, 1), '10 of 100 (10%), 10 images/s, about 9 s left');
});

test('a cache another live process is decoding is waited for, not decoded twice', async (t) => {
  process.env.ALEXNET_DECODE_WAIT_POLL_MS = '100';
  const root = tempDir(t);
  for (const [i, c] of ['a', 'b'].entries()) {
    for (const k of [0, 1, 2]) writeFile(join(root, 'train', c, `${k}.png`), await gradientImage(20, 20, [40 * i, 30 * k, 90], 'png'));
    writeFile(join(root, 'val', c, '0.png'), await gradientImage(20, 20, [90, 40 * i, 30], 'png'));
  }
  const cacheDir = tempDir(t);
  const listing = await listImageSplit(join(root, 'train'));
  const path = await cachePathFor(cacheDir, listing, 16);
  // what the other process will have written
  const ref = join(tempDir(t), 'ref.u8');
  await decodeToCache({ items: listing.items, classes: listing.classes, size: 16, path: ref, source: listing.dir, stats: true });
  mkdirSync(dirname(path), { recursive: true });
  // this test's parent process, alive, "decoding" the training split; it finishes a few polls after this run says
  // it waits for it (a timer started before would race the listing, slow on a busy machine)
  otherWriter(path, listing.items.length, { pid: process.ppid }, { written: 2, closed: false });
  let done: NodeJS.Timeout | undefined;
  t.teardown(() => clearTimeout(done));
  const logs: string[] = [];
  const log = (l: string) => {
    logs.push(l);
    if (/waiting for it rather than decoding it twice$/.test(l)) {
      done = setTimeout(() => {
        copyFileSync(statsPathFor(ref), statsPathFor(path));
        copyFileSync(ref, path);
      }, 500);
    }
  };
  const d = await openDataset(root, { size: 16, cacheDir, log });
  t.true(logs.some((l) => new RegExp(`^process ${process.ppid} is decoding .*train at 16x16 into .* \\(2 of 6 done\\): waiting for it rather than decoding it twice$`).test(l)), logs.join('\n'));
  t.false(logs.some((l) => /^decoding 6 images of .*train/.test(l)), 'the training split not decoded here');
  t.true(logs.some((l) => /^decoding 2 images of .*val/.test(l)), 'the held-out split, which nobody else decodes, decoded here');
  t.is(d.trainCount, 6);
});
