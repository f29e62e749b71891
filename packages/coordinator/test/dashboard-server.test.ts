/**
 * The dashboard's feed (metrics events to chart points, thinning of long histories) and its HTTP server
 * (routes, the offline page, the event stream, refusals), without workers: the pictures and the worker
 * status come from stand-ins. The whole thing with real workers in a browser: test/dashboard.test.ts.
 */
import http from 'node:http';
import test from 'ava';
import { DashboardFeed, type FeedEvent } from '../src/dashboard/feed.js';
import { DashboardServer, type DashboardImages, type StepImage } from '../src/dashboard/server.js';
import type { WorkerView } from '../src/dashboard/worker-status.js';

const stepEvent = (step: number, loss: number) => ({
  event: 'step',
  step,
  lr: 0.01,
  loss,
  top1_error: 0.5,
  top5_error: 0,
  batch: 4,
  ms: 10,
  images_per_s: 400,
  crossing_bytes: 100,
  workers: [0, 1].map((tower) => ({ tower, total_ms: 9, compute_ms: 5, exchange_ms: 4, update_ms: 0, exchange_hidden_ms: 1, sent_bytes: 50, received_bytes: 50, messages_sent: 4, messages_received: 4 })),
  traffic: [[], []],
});

test('feed: steps become chart points (x = steps done), evaluations and notes kept, subscribers told', (t) => {
  const feed = new DashboardFeed();
  const seen: FeedEvent[] = [];
  const off = feed.subscribe((e) => seen.push(e));
  t.false(feed.started);
  feed.record({ event: 'run', run_id: 'r', steps: 3 });
  t.true(feed.started);
  feed.record(stepEvent(0, 2.5));
  feed.record(stepEvent(1, 2.0));
  feed.record({ event: 'eval', step: 2, loss: 1.9, top1_error: 0.6, top5_error: 0.1, images: 32 });
  feed.record({ event: 'checkpoint', step: 2, file: 'x' });
  off();
  feed.record(stepEvent(2, 1.5));
  const s = feed.snapshot();
  t.deepEqual(s.steps.map((p) => [p.step, p.loss]), [[1, 2.5], [2, 2.0], [3, 1.5]]);
  t.deepEqual(s.steps.map((p) => p.top1_error), [0.5, 0.5, 0.5], 'the training top-1 error, as step lines say it');
  t.deepEqual(s.evals, [{ step: 2, loss: 1.9, top1_error: 0.6, top5_error: 0.1, images: 32 }]);
  t.deepEqual(s.notes, [{ event: 'checkpoint', step: 2, file: 'x' }]);
  t.is(s.last?.step, 3);
  t.deepEqual(seen.map((e) => e.type), ['run', 'step', 'step', 'eval', 'note']);
});

test('feed: the held-out top-5 error of a model of five classes or fewer is no point (every image is in its top 5)', (t) => {
  for (const [preset, top5] of [['tiny', null], ['cifar', 0.1], ['a-preset-of-another-build', 0.1]] as const) {
    const feed = new DashboardFeed();
    feed.record({ event: 'run', run_id: 'r', steps: 3, preset });
    feed.record({ event: 'eval', step: 2, loss: 1.9, top1_error: 0.6, top5_error: 0.1, images: 32 });
    t.is(feed.snapshot().evals[0]!.top5_error, top5, preset);
  }
});

test('feed: a resumed session or a restart goes back to its checkpoint: the points past it are dropped, the stream told', (t) => {
  const feed = new DashboardFeed();
  const seen: FeedEvent[] = [];
  feed.subscribe((e) => seen.push(e));
  feed.record({ event: 'run', run_id: 'r', steps: 8, start_step: 0 });
  for (let i = 0; i < 6; i++) feed.record(stepEvent(i, 3 - i * 0.1));
  feed.record({ event: 'eval', step: 4, loss: 1.9, top1_error: 0.6, top5_error: 0.1, images: 32 });
  feed.record({ event: 'eval', step: 6, loss: 1.8, top1_error: 0.5, top5_error: 0.1, images: 32 });
  // the session was killed after 6 steps; the next goes on from its checkpoint after 4
  feed.record({ event: 'run', run_id: 'r2', steps: 8, start_step: 4 });
  t.deepEqual(feed.snapshot().steps.map((p) => p.step), [1, 2, 3, 4]);
  t.deepEqual(feed.snapshot().evals.map((p) => p.step), [4], "the evaluation of the checkpoint's weights stays");
  t.deepEqual(seen.slice(-2), [{ type: 'rewind', to: 4 }, { type: 'run', run: { event: 'run', run_id: '…', steps: 8, start_step: 4 } }]);
  // its checkpoint was written before that evaluation: done again, it replaces the first
  feed.record({ event: 'eval', step: 4, loss: 1.85, top1_error: 0.6, top5_error: 0.1, images: 32 });
  t.deepEqual(feed.snapshot().evals.map((p) => [p.step, p.loss]), [[4, 1.85]]);
  feed.record(stepEvent(4, 1));
  feed.record(stepEvent(5, 0.9));
  feed.record(stepEvent(6, 0.8));
  // a lost worker: back to the checkpoint after 5 steps
  feed.record({ event: 'restart', restart: 1, max_restarts: 3, reason: 'x', tower: 1, from_step: 5, checkpoint: 'c', waited_s: 1 });
  feed.record(stepEvent(5, 0.7));
  const s = feed.snapshot();
  t.deepEqual(s.steps.map((p) => [p.step, p.loss]), [[1, 3], [2, 2.9], [3, 2.8], [4, 2.7], [5, 1], [6, 0.7]]);
  t.is(s.notes.at(-1)?.event, 'restart');
  // a session that starts where the log ends drops nothing and says nothing
  const before = seen.length;
  feed.record({ event: 'run', run_id: 'r3', steps: 8, start_step: 6 });
  t.deepEqual(seen.slice(before).map((e) => e.type), ['run']);
});

test('feed: a long history keeps every 2^k-th step and stays under its limit', (t) => {
  const feed = new DashboardFeed(100);
  for (let i = 0; i < 1000; i++) feed.record(stepEvent(i, 1));
  const s = feed.snapshot();
  t.true(s.steps.length <= 100 && s.steps.length >= 50, `${s.steps.length} points`);
  t.is(s.stride, 16);
  t.true(s.steps.every((p) => p.step % s.stride === 0));
  t.is(s.steps[s.steps.length - 1]!.step, 992);
  t.is(s.last?.step, 1000, 'the latest step is always there in full');
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

/** Reads Server-Sent Events until `until` says stop; returns them as [event, data]. */
/** The server-sent events of `url` until `until` holds; `seen` hears the events so far after each chunk. */
function readEvents(url: string, until: (events: [string, unknown][]) => boolean, seen: (events: [string, unknown][]) => void = () => {}): Promise<[string, unknown][]> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let text = '';
      const events: [string, unknown][] = [];
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        for (let i = text.indexOf('\n\n'); i >= 0; i = text.indexOf('\n\n')) {
          const block = text.slice(0, i);
          text = text.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block);
          const data = /^data: (.*)$/m.exec(block);
          if (ev && data) events.push([ev[1]!, JSON.parse(data[1]!)]);
        }
        seen(events);
        if (until(events)) {
          req.destroy();
          resolve(events);
        }
      });
    });
    req.on('error', reject);
  });
}

class StandInImages implements DashboardImages {
  readonly testImages = [{ index: 0, label: 3 }];
  readonly layers = ['conv1', 'pool5'];
  watched: boolean[] = [];
  readonly asked: string[] = [];
  kernels(tower: number): StepImage | null {
    return { png: Buffer.from(`kernels ${tower}`), step: 7, colour: tower === 0 ? 0.3 : 0.7 };
  }
  async testImagePng(): Promise<Uint8Array> {
    return Buffer.from('image');
  }
  async activations(tower: number, index: number, layer: string): Promise<StepImage> {
    this.asked.push(`${tower}/${index}/${layer}`);
    return { png: Buffer.from(`maps ${tower}`), step: 8 };
  }
  watching(on: boolean): void {
    this.watched.push(on);
  }
}

const standInWorkers = async (): Promise<WorkerView[]> =>
  [0, 1].map((tower) => ({
    tower,
    address: `127.0.0.1:5005${tower}`,
    host: 'h',
    device: 0,
    backend: 'webasm',
    adapter: 'no adapter',
    state: 'READY',
    pid: 1,
    steps_done: 3,
    evaluations_done: 0,
    uptime_s: 1,
    rss_mib: 100,
    last_step_timing: { total_ms: 9, compute_ms: 5, exchange_ms: 4, update_ms: 0, exchange_hidden_ms: 1 },
    last_step_traffic: [],
    run_traffic: [],
    last_error: '',
    unreachable: null,
  }));

test('server: the page and uPlot from this machine only, the API, the event stream, refusals', async (t) => {
  const feed = new DashboardFeed();
  const images = new StandInImages();
  const server = new DashboardServer({ host: '127.0.0.1', port: 0, feed, images, workers: standInWorkers, statusEveryMs: 50 });
  const url = await server.start();
  t.teardown(() => server.close());
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  feed.record({ event: 'run', run_id: '20261206T120000Z-5f3a9c', steps: 10 });
  feed.record(stepEvent(0, 3));

  // the page refers to nothing outside this server, and says so to the browser
  const page = await get(url);
  t.is(page.status, 200);
  t.regex(String(page.headers['content-type']), /^text\/html/);
  t.regex(String(page.headers['content-security-policy']), /default-src 'self'/);
  const html = page.body.toString();
  t.notRegex(html, /(src|href)="(https?:)?\/\//, 'no address of another host in the page');
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((r) => !r.startsWith('data:'));
  t.deepEqual(refs.sort(), ['/static/app.js', '/static/smooth.js', '/static/style.css', '/vendor/uPlot.iife.min.js', '/vendor/uPlot.min.css']);
  for (const r of refs) {
    const res = await get(new URL(r, url).href);
    t.is(res.status, 200, r);
    t.true(res.body.length > 500, `${r}: ${res.body.length} bytes`);
    t.notRegex(res.body.toString(), /\b(import|fetch)\s*\(\s*['"]https?:/, `${r} fetches nothing from elsewhere`);
  }
  t.regex((await get(`${url}vendor/uPlot.iife.min.js`)).body.toString(), /uPlot/);

  const snap = JSON.parse((await get(`${url}api/snapshot`)).body.toString()) as { run: { run_id: string }; steps: unknown[] };
  t.is(snap.run.run_id, '20261206T120000Z-…', 'the run id with its random part hidden');
  t.is(snap.steps.length, 1);
  const workers = JSON.parse((await get(`${url}api/workers`)).body.toString()) as WorkerView[];
  t.deepEqual(workers.map((w) => w.backend), ['webasm', 'webasm']);
  const k1 = await get(`${url}api/kernels/1.png`);
  t.is(k1.status, 200);
  t.is(k1.headers['content-type'], 'image/png');
  t.is(k1.headers['x-alexnet-step'], '7');
  t.is(k1.body.toString(), 'kernels 1');
  t.deepEqual(JSON.parse((await get(`${url}api/test-images`)).body.toString()), { images: [{ index: 0, label: 3 }], layers: ['conv1', 'pool5'] });
  t.is((await get(`${url}api/test-images/0.png`)).body.toString(), 'image');
  const maps = await get(`${url}api/activations/1.png?image=0&layer=pool5`);
  t.is(maps.body.toString(), 'maps 1');
  t.is(maps.headers['x-alexnet-step'], '8');
  t.deepEqual(images.asked, ['1/0/pool5']);

  // refusals: one line each, nothing asked of the workers
  t.is((await get(`${url}api/activations/0.png?image=0&layer=fc8`)).status, 400);
  t.is((await get(`${url}api/activations/0.png?image=5&layer=conv1`)).status, 404);
  t.is((await get(`${url}api/kernels/2.png`)).status, 404);
  t.is((await get(`${url}../../etc/passwd`)).status, 404);
  t.is((await get(`${url}static/../server.ts`)).status, 404);
  t.deepEqual(images.asked, ['1/0/pool5']);

  // the stream: the snapshot, the cached kernels, then new steps and the workers' status as they come
  // the new step is recorded once the snapshot is in, so that it comes as an event, not in the snapshot
  let recorded = false;
  const got = await readEvents(
    `${url}api/events`,
    (es) => es.some(([e]) => e === 'step') && es.some(([e]) => e === 'status'),
    (es) => {
      if (!recorded && es.some(([e]) => e === 'snapshot')) {
        recorded = true;
        feed.record(stepEvent(1, 2));
      }
    },
  );
  t.is(got[0]![0], 'snapshot');
  t.deepEqual(
    got.filter(([e]) => e === 'kernels').map(([, d]) => d),
    [
      { type: 'kernels', tower: 0, step: 7, colour: 0.3 },
      { type: 'kernels', tower: 1, step: 7, colour: 0.7 },
    ],
  );
  t.is((got.find(([e]) => e === 'step')![1] as { point: { step: number } }).point.step, 2);
  t.is(images.watched[0], true, 'the pictures refresh while a page watches');
  // the server hears the page leave a moment after the connection closes
  for (const until = Date.now() + 5000; images.watched[images.watched.length - 1] !== false && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
  t.is(images.watched[images.watched.length - 1], false, '... and stop when it leaves');
});

test('server: a port in use is an error of start()', async (t) => {
  const a = new DashboardServer({ host: '127.0.0.1', port: 0, feed: new DashboardFeed() });
  const url = await a.start();
  t.teardown(() => a.close());
  const b = new DashboardServer({ host: '127.0.0.1', port: Number(new URL(url).port), feed: new DashboardFeed() });
  await t.throwsAsync(b.start(), { code: 'EADDRINUSE' });
});

test('server: a viewer that stops reading its event stream is dropped once 1 MiB waits for it; the others keep theirs', async (t) => {
  const feed = new DashboardFeed();
  const server = new DashboardServer({ host: '127.0.0.1', port: 0, feed });
  const url = new URL(await server.start());
  t.teardown(() => server.close());
  const open = (read: boolean) =>
    new Promise<() => number>((resolve) => {
      let bytes = 0;
      const req = http.get({ host: url.hostname, port: url.port, path: '/api/events' }, (res) => {
        if (read) res.on('data', (b: Buffer) => (bytes += b.length));
        else res.pause(); // a sleeping laptop: nothing is read any more
        resolve(() => bytes);
      });
      req.on('error', () => {});
    });
  await open(false);
  const awake = await open(true);
  for (const until = Date.now() + 5000; server.viewers < 2 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10));
  t.is(server.viewers, 2);
  feed.record({ event: 'run', run_id: 'r', steps: 100_000 });
  // notes of 64 KiB each, until the sleeping viewer's backlog passes the limit (socket buffers hold some first)
  const big = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 800 && server.viewers === 2; i++) {
    feed.record({ event: 'checkpoint', step: i, file: big });
    await new Promise((r) => setTimeout(r, 2));
  }
  t.is(server.viewers, 1, 'the viewer that stopped reading was dropped');
  const before = awake();
  feed.record({ event: 'checkpoint', step: 999, file: 'after' });
  await new Promise((r) => setTimeout(r, 100));
  t.true(awake() > before, 'the reading viewer still gets events');
});

test('server on a run folder: kernels asked for before they are read say so; without a checkpoint, that there is none', async (t) => {
  class NotReadYet extends StandInImages {
    override kernels(): StepImage | null {
      return null;
    }
  }
  for (const [images, said] of [
    [new NotReadYet(), 'no kernels yet: they are read from the latest checkpoint while a page watches \\(open the dashboard, or GET /api/events\\)'],
    [undefined, 'no kernels: the run folder has no checkpoint yet'],
  ] as const) {
    const server = new DashboardServer({ host: '127.0.0.1', port: 0, feed: new DashboardFeed(), images });
    const url = await server.start();
    t.teardown(() => server.close());
    const res = await get(`${url}api/kernels/0.png`);
    t.is(res.status, 404);
    t.regex(res.body.toString(), new RegExp(said));
  }
});
