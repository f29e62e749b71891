/**
 * Ten-patch evaluation (`--eval-views ten`, the paper's section 4.1): each held-out image goes to the
 * workers as its ten patches, and the coordinator scores it from the softmax averaged over them. Against
 * the same evaluation computed here from the raw per-view logits; and through `launch`, whose workers'
 * --max-batch must cover ten views per evaluation image.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tiny, topKCorrect } from '@alexnet-mp/core';
import { averageViewSoftmax } from '@alexnet-mp/core/data';
import { Coordinator, openTrainingData } from '@alexnet-mp/coordinator';
import { gradientImage, writeFile } from '../packages/core/test/data-fixtures.js';
import { alexnet, startWorker } from './helpers.js';

function tempDir(t: { teardown(f: () => void): void }, prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** 4 classes, 6 training and 2 val images each (16 pixels, the tiny preset's input). */
async function imageFolder(t: { teardown(f: () => void): void }): Promise<string> {
  const root = tempDir(t, 'alexnet-views-');
  const colours: [number, number, number][] = [[250, 40, 40], [40, 250, 40], [40, 40, 250], [230, 230, 40]];
  for (const [c, rgb] of colours.entries()) {
    for (let i = 0; i < 6; i++) writeFile(path.join(root, 'train', `c${c}`, `${i}.png`), await gradientImage(16 + i, 16, rgb, 'png'));
    for (let i = 0; i < 2; i++) writeFile(path.join(root, 'val', `c${c}`, `${i}.png`), await gradientImage(16, 16 + i, rgb, 'png'));
  }
  return root;
}

const HYPER = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

/** Two workers taking batches of up to `maxBatch` images, and the image folder above opened as the run's data. */
async function workersAndFolder(t: ExecutionContext, maxBatch: number) {
  const root = await imageFolder(t);
  const cache = tempDir(t, 'alexnet-cache-');
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(maxBatch)]), startWorker(t, 1, ['--max-batch', String(maxBatch)])]);
  const data = await openTrainingData({ data: root, spec: tiny, seed: 3, cacheDir: cache });
  t.teardown(() => data.close());
  return { w0, w1, data };
}

async function first<T>(it: AsyncIterable<T>): Promise<T[]> {
  for await (const x of it) return [x];
  return [];
}

test('ten views: loss, top-1 and top-5 error from the softmax averaged over each image\'s ten patches', async (t) => {
  const { w0, w1, data } = await workersAndFolder(t, 30);
  // 8 val images in batches of 3 (the last one 2): 30, 30 and 20 views sent
  const set = data.heldOut(3, undefined, 'ten');
  t.is(set.views, 10);
  t.is(set.maxBatch, 30);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 3, hyper: HYPER, source: data.source, eval: { every: 1, set } });
  t.teardown(() => c.close());
  await c.start();
  const m = await c.evaluateHeldOut();
  t.is(m.event, 'eval');
  t.is(m.views, 10);
  t.is(m.images, 8);
  t.is(m.batches, 3);

  // the same from the raw logits of every view (no step in between: the same parameters)
  const classes = tiny.classes;
  let loss = 0;
  let top1 = 0;
  let top5 = 0;
  let images = 0;
  for await (const b of set.batches()) {
    const r = await c.evaluateBatch({ images: b.images, labels: new Uint32Array(0) });
    t.is(r.batch, b.labels.length * 10);
    const p = averageViewSoftmax(r.logits, classes, 10);
    const n = b.labels.length;
    for (let j = 0; j < n; j++) loss -= Math.log(p[b.labels[j]! * n + j]!);
    top1 += topKCorrect(p, b.labels, classes, 1);
    top5 += topKCorrect(p, b.labels, classes, 5);
    images += n;
  }
  t.is(images, 8);
  t.true(Number.isFinite(m.loss) && m.loss > 0);
  t.true(Math.abs(m.loss - loss / images) < 1e-5, `${m.loss} vs ${loss / images}`);
  t.is(m.top1_error, 1 - top1 / images);
  t.is(m.top5_error, 1 - top5 / images);

  // a limited evaluation (evenly spaced images 0, 2, 4, 6) keeps each image's ten views together
  const spaced = data.heldOut(2, 2, 'ten');
  const [full] = await first(set.batches());
  const [part] = await first(spaced.batches());
  const block = 10 * tiny.inputSize * tiny.inputSize;
  t.deepEqual(Array.from(part!.labels), [full!.labels[0], full!.labels[2]]);
  for (let ch = 0; ch < 3; ch++) {
    for (const [j, k] of [[0, 0], [1, 2]] as const) t.deepEqual(part!.images.subarray((ch * 2 + j) * block, (ch * 2 + j + 1) * block), full!.images.subarray((ch * 3 + k) * block, (ch * 3 + k + 1) * block));
  }

  // centre crops: the same images, no views on the line
  const centre = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 3, hyper: HYPER, source: data.source, eval: { every: 1, set: data.heldOut(3) } });
  t.teardown(() => centre.close());
  await c.release();
  c.close();
  await centre.start();
  const mc = await centre.evaluateHeldOut();
  t.is(mc.images, 8);
  t.false('views' in mc);
});

test('launch --eval-views ten: the workers take ten views per evaluation image; the eval lines say views 10; synthetic data is refused', async (t) => {
  const root = await imageFolder(t);
  const cache = tempDir(t, 'alexnet-cache-');
  const dir = tempDir(t, 'alexnet-run-');
  // --eval-batch 8: 80 images a batch sent, more than --batch
  const p = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '8', '--eval-batch', '8', '--data', root, '--cache-dir', cache, '--epochs', '1', '--eval-views', 'ten', '--run-dir', dir]);
  t.is((await p.exited).code, 0, p.output());
  const ev = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; images?: number; views?: number; loss?: number; eval?: { data: string } });
  t.regex(ev[0]!.eval!.data, /8 val images .*ten 16x16 patches/);
  const evals = ev.filter((e) => e.event === 'eval');
  t.is(evals.length, 1);
  t.is(evals[0]!.images, 8);
  t.is(evals[0]!.views, 10);
  t.true(Number.isFinite(evals[0]!.loss));

  const s = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--eval-views', 'ten', '--eval-every', '1']);
  t.is((await s.exited).code, 2, s.output());
  t.regex(s.output(), /--eval-views ten needs real data/);
});

test('a held-out evaluation under way says how far it is, every evalProgressMs', async (t) => {
  const { w0, w1, data } = await workersAndFolder(t, 8);
  const held = data.heldOut(2);
  // each batch a little late, as a large test set's decoding would be
  const set = {
    ...held,
    async *batches() {
      for await (const b of held.batches()) {
        await new Promise((r) => setTimeout(r, 60));
        yield b;
      }
    },
  };
  const lines: string[] = [];
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 3, hyper: HYPER, source: data.source, eval: { every: 1, set }, evalProgressMs: 50, info: (l) => lines.push(l) });
  t.teardown(() => c.close());
  await c.start();
  const m = await c.evaluateHeldOut();
  t.is(m.images, 8);
  const said = lines.filter((l) => /^evaluation after step 0: \d+ images sent to the workers, \d+ s$/.test(l));
  t.true(said.length >= 2, lines.join('\n'));
  const counts = said.map((l) => Number(/: (\d+) images/.exec(l)![1]));
  t.deepEqual([...counts].sort((a, b) => a - b), counts, 'counts only grow');
  t.true(counts.every((n) => n <= 8));
  // none once it is done
  const after = lines.length;
  await new Promise((r) => setTimeout(r, 150));
  t.is(lines.length, after);
});

