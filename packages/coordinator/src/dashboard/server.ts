/**
 * The dashboard's HTTP server, inside the coordinator: the page (plain HTML, JS and CSS from ./public),
 * uPlot from node_modules (nothing is fetched from the internet: a Content-Security-Policy of 'self' says
 * so to the browser as well), the run's metrics as JSON and as a Server-Sent Events stream, each worker's
 * status, and the conv1 kernels and feature maps as PNG images.
 *
 * Routes (GET):
 *   /                          the page
 *   /static/<file>             its scripts and style sheet
 *   /vendor/uPlot.iife.min.js, /vendor/uPlot.min.css
 *   /api/snapshot              the run, every chart point so far, the latest step (JSON)
 *   /api/events                the same snapshot, then every new event (text/event-stream)
 *   /api/workers               both workers' status (Worker.Status; JSON)
 *   /api/kernels/<tower>.png   the tower's conv1 kernels, refreshed while a page watches (404 until the first)
 *   /api/test-images           the test images the feature maps can be shown for, and the layers (JSON)
 *   /api/test-images/<i>.png   test image i
 *   /api/activations/<tower>.png?image=I&layer=L   the tower's feature maps of test image I at layer L
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { DashboardFeed, FeedEvent } from './feed.js';

/** Unread bytes after which an event stream's viewer is taken as gone (broadcast). */
export const SLOW_VIEWER_BYTES = 1 << 20;
import type { WorkerView } from './worker-status.js';

/** A PNG and the steps done when the weights it shows were read. */
export interface StepImage {
  readonly png: Uint8Array;
  readonly step: number;
  /** Kernels: their mean colour share (inspect/colour.ts), null unless RGB. */
  readonly colour?: number | null;
}

/** The images the dashboard shows, from the workers (see live-images.ts). */
export interface DashboardImages {
  /** The latest conv1 kernels of a tower, or null before the first fetch. */
  kernels(tower: number): StepImage | null;
  /** The test images the feature maps can be shown for (their class labels) and the layers. */
  readonly testImages: readonly { index: number; label: number }[];
  readonly layers: readonly string[];
  testImagePng(index: number): Promise<Uint8Array>;
  /** A tower's feature maps of test image `index` at `layer`, with the current weights (fetched between steps). */
  activations(tower: number, index: number, layer: string): Promise<StepImage>;
  /** Called when the first page starts watching and when the last stops (the kernels refresh only while watched). */
  watching(on: boolean): void;
  /** Why there are no kernels, where these images know better than the server (a run folder without a checkpoint yet). */
  readonly why?: string | null;
}

export interface DashboardOptions {
  readonly host: string;
  /** 0: a free port the OS picks. */
  readonly port: number;
  readonly feed: DashboardFeed;
  /** Both workers' status now; the server pushes it to the pages once a second. */
  readonly workers?: () => Promise<WorkerView[]>;
  readonly images?: DashboardImages;
  /** How often the status is pushed (ms). */
  readonly statusEveryMs?: number;
}

/** A request the server refuses: its status code and a one-line reason. */
class HttpError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

const publicDir = fileURLToPath(new URL('./public/', import.meta.url));
const require = createRequire(import.meta.url);
const uplotDist = path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(publicDir, 'index.html'), type: 'text/html; charset=utf-8' },
  '/static/app.js': { file: path.join(publicDir, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/static/smooth.js': { file: path.join(publicDir, 'smooth.js'), type: 'text/javascript; charset=utf-8' },
  '/static/style.css': { file: path.join(publicDir, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': { file: path.join(uplotDist, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { file: path.join(uplotDist, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** Everything from this server; images may also be data: URLs (uPlot's legend markers are plain CSS). */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export class DashboardServer {
  private readonly server: http.Server;
  private readonly streams = new Set<http.ServerResponse>();
  private statusTimer: NodeJS.Timeout | null = null;
  private lastStatus: WorkerView[] | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly o: DashboardOptions) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        const code = e instanceof HttpError ? e.code : 500;
        if (!res.headersSent) res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${e instanceof Error ? e.message : String(e)}\n`);
      });
    });
  }

  /** Listens; resolves with the page's URL. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.unsubscribe = this.o.feed.subscribe((e) => this.broadcast(e));
    return this.url;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    // every interface: the machine's name, which another machine can use (localhost would be its own)
    return `http://${host === '0.0.0.0' || host === '[::]' ? os.hostname() : host}:${a.port}/`;
  }

  /** A warning when the page is served beyond this machine (no authentication guards it), else null. */
  get exposure(): string | null {
    const a = this.server.address() as AddressInfo;
    if (/^127\.|^::1$|^::ffff:127\./.test(a.address)) return null;
    return `warning: the dashboard at ${this.url} is served to every machine that reaches port ${a.port} here, without authentication (the run's curves, kernels and test images): give --ui-host 127.0.0.1 to keep it to this machine`;
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.stopStatus();
    for (const s of this.streams) s.end();
    this.streams.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} is not served here`);
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const p = url.pathname;
    const fixed = STATIC[p === '/index.html' ? '/' : p];
    if (fixed) return this.send(res, 200, fixed.type, await fs.promises.readFile(fixed.file));
    if (p === '/api/snapshot') return this.json(res, this.o.feed.snapshot());
    if (p === '/api/events') return this.events(req, res);
    if (p === '/api/workers') return this.json(res, this.o.workers ? await this.o.workers() : []);
    const images = this.o.images;
    let m: RegExpExecArray | null;
    if ((m = /^\/api\/kernels\/([01])\.png$/.exec(p))) {
      const k = images?.kernels(Number(m[1]));
      if (!k) throw new HttpError(404, images?.why ?? (this.o.workers ? 'no kernels yet: they are fetched from the workers while a page watches' : images ? `no kernels yet: they are read from the latest checkpoint ${this.viewers > 0 ? 'now' : 'while a page watches (open the dashboard, or GET /api/events)'}` : 'no kernels: the run folder has no checkpoint yet'));
      return this.png(res, k);
    }
    if (p === '/api/test-images') return this.json(res, { images: images?.testImages ?? [], layers: images?.layers ?? [] });
    if ((m = /^\/api\/test-images\/(\d+)\.png$/.exec(p))) {
      const i = this.testImage(Number(m[1]));
      return this.send(res, 200, 'image/png', await images!.testImagePng(i));
    }
    if ((m = /^\/api\/activations\/([01])\.png$/.exec(p))) {
      const given = url.searchParams.get('image');
      if (given === null || !/^\d+$/.test(given)) throw new HttpError(400, `give ?image=N, the index of a test image (GET /api/test-images lists them)${given === null ? '' : `, not "${given}"`}`);
      const i = this.testImage(Number(given));
      const layer = url.searchParams.get('layer') ?? '';
      if (!images!.layers.includes(layer)) throw new HttpError(400, `layer "${layer}": one of ${images!.layers.join(', ')}`);
      return this.png(res, await images!.activations(Number(m[1]), i, layer));
    }
    throw new HttpError(404, `nothing at ${p}`);
  }

  private testImage(i: number): number {
    const list = this.o.images?.testImages ?? [];
    if (!list.some((t) => t.index === i)) throw new HttpError(404, `no test image ${i} (there are ${list.length})`);
    return i;
  }

  private send(res: http.ServerResponse, code: number, type: string, body: Uint8Array | string, headers: Record<string, string> = {}): void {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-cache', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', ...headers });
    res.end(body);
  }

  private json(res: http.ServerResponse, body: unknown): void {
    this.send(res, 200, 'application/json; charset=utf-8', JSON.stringify(body));
  }

  private png(res: http.ServerResponse, img: StepImage): void {
    this.send(res, 200, 'image/png', img.png, { 'x-alexnet-step': String(img.step) });
  }

  /** Server-Sent Events: a snapshot, then every feed event; the worker status once a second while anyone listens. */
  private events(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'content-security-policy': CSP });
    res.write(`event: snapshot\ndata: ${JSON.stringify(this.o.feed.snapshot())}\n\n`);
    for (const t of [0, 1]) {
      const k = this.o.images?.kernels(t);
      if (k) res.write(`event: kernels\ndata: ${JSON.stringify({ type: 'kernels', tower: t, step: k.step, colour: k.colour })}\n\n`);
    }
    if (this.lastStatus) res.write(`event: status\ndata: ${JSON.stringify({ type: 'status', workers: this.lastStatus })}\n\n`);
    this.streams.add(res);
    if (this.streams.size === 1) {
      this.startStatus();
      this.o.images?.watching(true);
    }
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(keepAlive);
      this.streams.delete(res);
      if (this.streams.size === 0) {
        this.stopStatus();
        this.o.images?.watching(false);
      }
    });
  }

  /** Pages following the event stream now. */
  get viewers(): number {
    return this.streams.size;
  }

  private broadcast(e: FeedEvent): void {
    const line = `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
    for (const s of this.streams) {
      // a viewer that stopped reading (a sleeping laptop behind a tunnel) would have every event buffered here
      // until TCP gives up: past 1 MiB unread its stream is closed (its page reconnects and gets a snapshot)
      if (s.writableLength > SLOW_VIEWER_BYTES) {
        s.destroy();
        continue;
      }
      s.write(line);
    }
  }

  private startStatus(): void {
    const poll = this.o.workers;
    if (!poll || this.statusTimer) return;
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        this.lastStatus = await poll();
        this.broadcast({ type: 'status', workers: this.lastStatus });
      } finally {
        busy = false;
      }
    };
    void tick();
    this.statusTimer = setInterval(() => void tick(), this.o.statusEveryMs ?? 1000);
  }

  private stopStatus(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = null;
  }
}
