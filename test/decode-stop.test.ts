/**
 * Stopping while the data decodes (before training): launch's Ctrl-C reaches the coordinator as a "stop SIGINT"
 * line and a signal of its own stops it too, at once in both cases, with the decoding kept; the next run goes on from
 * where it stopped.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { alexnet, alive, childPids, tempDir } from './helpers.js';

const cifarFolder = path.resolve('../shared/datasets/cifar10');

/** The journal of a partial decoding in `dir` (of process `pid`, or any) that counts some images, once one is there. */
async function journal(dir: string, pid?: number, timeoutMs = 30_000): Promise<{ name: string; done: number }> {
  const end = Date.now() + timeoutMs;
  // the host name may hold '-' (ip-10-0-0-1): the pid and the tag are the last two parts
  const re = new RegExp(`\\.u8\\.partial-.+-${pid ?? '\\d+'}-[0-9a-f]{6}\\.json$`);
  for (;;) {
    const name = fs.existsSync(dir) ? fs.readdirSync(dir).find((f) => re.test(f)) : undefined;
    const done = name ? (JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as { done: number }).done : 0;
    if (name && done > 0) return { name, done };
    if (Date.now() > end) throw new Error(`no journal in ${dir} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

(fs.existsSync(cifarFolder) ? test : test.skip)('Ctrl-C while the training images decode stops at once and keeps them; the next run goes on from there', async (t) => {
  const cache = tempDir(t);
  const decoded = path.join(cache, 'decoded');
  // journals every 0.2 s instead of 5 s: the test need not wait
  const env = { ...process.env, ALEXNET_DECODE_JOURNAL_MS: '200' };
  const first = alexnet(['launch', '--preset', 'cifar', '--data', cifarFolder, '--cache-dir', cache, '--steps', '1', '--batch', '8'], { env });
  await first.waitFor(/decoding 50000 images of .*cifar10\/train at 32x32 into .* \(153\.9 MB, once; an interrupted decoding goes on where it stopped\)$/, 150_000);
  const j1 = await journal(decoded);
  const at = performance.now();
  first.proc.kill('SIGINT');
  const r1 = await first.exited;
  // launch's whole stop (it waits for its workers too) within seconds, the decoding unfinished (below)
  t.true(performance.now() - at < 30_000, 'stopped without finishing the decoding');
  t.is(r1.code, 130, first.output());
  // how many are kept: what the journal records (written every 0.2 s here), at least what it said before the stop
  const said1 = first.stderr.map((l) => /SIGINT before training started: stopping \((\d+) images? decoded into the cache (?:is|are) kept: the next run goes on from (?:it|them)\)$/.exec(l)).find((m) => m !== null);
  t.truthy(said1, first.output());
  const kept1 = Number(said1![1]);
  t.true(kept1 >= j1.done, `${kept1} kept, ${j1.done} recorded before the stop`);
  t.true(first.stderr.includes('[launch] SIGINT: training has not started: the coordinator stops now (a decoding under way keeps the images its journal recorded for the next run: the coordinator says how many)'), first.output());
  for (const [name, pid] of Object.entries(childPids(first.stderr))) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
  t.false(fs.readdirSync(decoded).some((f) => f.endsWith('.u8')), 'no finished cache');
  // left closed: the next run takes it up wherever it runs (another container, another machine)
  const left = JSON.parse(fs.readFileSync(path.join(decoded, (await journal(decoded)).name), 'utf8')) as { closed: boolean };
  t.true(left.closed, 'the journal marked closed by the stop');

  // a coordinator alone (its workers are not reached before the data is open), stopped by its own SIGINT
  const second = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'cifar', '--data', cifarFolder, '--cache-dir', cache], { env });
  const m = await second.waitFor(/\(153\.9 MB\), going on from image (\d+), where an interrupted decoding stopped$/);
  t.is(Number(m[1]), kept1, 'the next run goes on from the images the stop said were kept');
  // taken over by the second run: its file and journal renamed for it
  await journal(decoded, second.proc.pid);
  second.proc.kill('SIGINT');
  t.is((await second.exited).code, 130, second.output());
  const j2 = await journal(decoded, second.proc.pid);
  t.true(j2.done >= Number(m[1]));
  // (a journal's temporary file may be left by the stop, between its write and its rename)
  t.is(fs.readdirSync(decoded).filter((f) => f.includes('.partial-') && !f.endsWith('.tmp')).length, 2, 'one partial file and its journal');
});

(fs.existsSync(cifarFolder) ? test : test.skip)('a coordinator started by launch whose stdin closes while the data decodes (launch killed outright) stops at once', async (t) => {
  const cache = tempDir(t);
  const env = { ...process.env, ALEXNET_DECODE_JOURNAL_MS: '200' };
  // stdin a pipe, as launch gives it: closed once the decoding is under way, as when launch is killed then
  const p = alexnet(['coordinator', '--exit-with-stdin', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'cifar', '--data', cifarFolder, '--cache-dir', cache], { env, stdin: 'pipe' });
  await p.waitFor(/decoding 50000 images of .*cifar10\/train at 32x32/);
  await journal(path.join(cache, 'decoded'));
  p.proc.stdin!.end();
  const { code } = await p.exited;
  t.is(code, 1, p.output());
  t.true(p.stderr.some((l) => /stdin closed before training started: stopping \([1-9]\d* images? decoded into the cache (is|are) kept: the next run goes on from (it|them)\)$/.test(l)), p.output());
  // stdin closed from the start (/dev/null): stopped before anything was decoded, and said so without the images
  const q = alexnet(['coordinator', '--exit-with-stdin', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'cifar', '--data', cifarFolder, '--cache-dir', tempDir(t)]);
  t.is((await q.exited).code, 1, q.output());
  t.true(q.stderr.some((l) => l.endsWith('stdin closed before training started: stopping')), q.output());
});

(fs.existsSync(cifarFolder) ? test : test.skip)("a stop before the decoding's journal recorded an image says that nothing is kept", async (t) => {
  const cache = tempDir(t);
  const decoded = path.join(cache, 'decoded');
  // the journal written as the file opens (0 images) and not again for ten minutes
  const env = { ...process.env, ALEXNET_DECODE_JOURNAL_MS: '600000' };
  const p = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'cifar', '--data', cifarFolder, '--cache-dir', cache], { env });
  await p.waitFor(/decoding 50000 images of .*cifar10\/train at 32x32/, 150_000);
  for (const end = Date.now() + 30_000; !(fs.existsSync(decoded) && fs.readdirSync(decoded).some((f) => /\.partial-.*\.json$/.test(f))); ) {
    if (Date.now() > end) return t.fail(`no journal in ${decoded}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // the decoding thread's word that its file is open reaches the coordinator as the journal appears
  await new Promise((r) => setTimeout(r, 500));
  p.proc.kill('SIGINT');
  t.is((await p.exited).code, 130, p.output());
  t.true(p.stderr.some((l) => l.endsWith('SIGINT before training started: stopping (the decoding had recorded no image yet: the next run starts it again)')), p.output());
});
