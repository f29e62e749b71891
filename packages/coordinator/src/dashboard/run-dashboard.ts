/**
 * `alexnet dashboard RUN_DIR`: the dashboard of a run folder, in its own process, for a run that has finished
 * or one still training (started with or without --ui-port, on this machine or another that shares the
 * folder). The curves come from RUN_DIR/metrics.jsonl, read whole and then followed as lines are appended;
 * the kernels and feature maps from the run's latest checkpoint, opened again when a newer one appears. No
 * worker is asked anything, so no worker status is shown.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { CheckpointError, getPreset, latestCheckpoint, listCheckpoints, stepOfFile, type ModelSpec, type RequestedBackend } from '@alexnet-mp/core';
import { checkpointDir } from '../resume.js';
import { runMetricsFile } from '../run-summary.js';
import { LeftOut, eventProblem } from '../metrics-events.js';
import { CheckpointSource } from '../inspect/source.js';
import type { ActivationsAt, KernelsAt } from '../inspect/live.js';
import { openHeldOutFor } from '../training-data.js';
import { DashboardFeed } from './feed.js';
import { LiveImages } from './live-images.js';
import { listenError, testBatch } from './open.js';
import { DashboardServer, type DashboardImages, type StepImage } from './server.js';
import { UserError } from '../cli/errors.js';

/** metrics.jsonl, from the first byte and then as it grows: each whole line to `onLine`. */
export class LineFollower {
  private offset = 0;
  private rest = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    readonly file: string,
    private readonly onLine: (line: string) => void,
  ) {}

  /** Reads what was appended since the last call; a file cut shorter (a torn line repaired) is read on from its new end. */
  poll(): void {
    let size: number;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return;
    }
    if (size < this.offset) {
      this.offset = size;
      this.rest = '';
      return;
    }
    if (size === this.offset) return;
    const fd = fs.openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(16 << 20, size - this.offset));
      while (this.offset < size) {
        const got = fs.readSync(fd, buf, 0, Math.min(buf.length, size - this.offset), this.offset);
        if (got === 0) break;
        this.offset += got;
        const lines = (this.rest + this.decoder.write(buf.subarray(0, got))).split('\n');
        this.rest = lines.pop()!;
        for (const l of lines) if (l.trim() !== '') this.onLine(l);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** The kernels and feature maps of a run's latest checkpoint, the checkpoint opened again when a newer one is written. */
class LatestCheckpoint {
  private source: CheckpointSource | null = null;
  private file: string | null = null;
  private closed = false;

  constructor(
    private readonly runDir: string,
    private readonly o: { backend: RequestedBackend; data?: string; cacheDir?: string; info: (l: string) => void },
  ) {}

  /** The source of the latest checkpoint (null when the run has none, or once closed). */
  async current(): Promise<CheckpointSource | null> {
    // a look still running when the dashboard closes opens nothing more
    if (this.closed) return null;
    const latest = latestCheckpoint(checkpointDir(this.runDir));
    if (latest !== this.file) {
      await this.source?.close();
      this.source = null;
      if (this.closed) return null;
      this.file = latest;
      // newest first: a damaged checkpoint is said and passed over for the one before it (the curves go on regardless)
      const files = listCheckpoints(checkpointDir(this.runDir)).reverse();
      for (const f of files) {
        try {
          this.source = CheckpointSource.open(this.runDir, { backend: this.o.backend, data: this.o.data, cacheDir: this.o.cacheDir, step: stepOfFile(f) ?? undefined });
          if (f !== latest) this.o.info(`the pictures come from ${path.basename(f)}, the newest checkpoint that reads`);
          break;
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
          this.o.info(`the pictures: ${e.message}`);
        }
      }
    }
    return this.source;
  }

  /**
   * The step the pictures are of (-1: none): the newest checkpoint on disk, or, once that one has been tried, the
   * step of the checkpoint opened for it (an older one when it is damaged); they are fetched again once it moves on.
   */
  get step(): number {
    const f = latestCheckpoint(checkpointDir(this.runDir));
    if (f !== null && f === this.file && this.source) return this.source.step;
    return f ? (stepOfFile(f) ?? -1) : -1;
  }

  async kernels(layer: string): Promise<KernelsAt> {
    const s = await this.current();
    if (!s) throw new UserError(`${this.runDir} has no checkpoint yet`);
    return s.kernels(layer);
  }

  async activations(images: Uint8Array, layer: string): Promise<ActivationsAt> {
    const s = await this.current();
    if (!s) throw new UserError(`${this.runDir} has no checkpoint yet`);
    return s.activations(images, layer);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.source?.close();
    this.source = null;
  }
}

/**
 * The pictures of a run folder that has no checkpoint yet: none, and a look for the first checkpoint every
 * `everyMs` while a page watches; from then on those of the checkpoint (LiveImages), the page told by the
 * kernels' event.
 */
export class FirstCheckpointImages implements DashboardImages {
  private live: DashboardImages | null = null;
  private timer: NodeJS.Timeout | null = null;
  private looking: Promise<void> | null = null;
  private watched = false;

  constructor(
    private readonly open: () => Promise<DashboardImages | null>,
    private readonly everyMs: number,
    private readonly info: (line: string) => void = () => {},
    /** Whether the run has ended (its log's last session closed): then it may never write a checkpoint. */
    private readonly ended: () => boolean = () => false,
  ) {}

  get why(): string | null {
    if (this.live) return this.live.why ?? null;
    return this.ended() ? 'no kernels: the run has ended without a checkpoint in its folder (a finished run may keep only the model exported from it)' : 'no kernels: the run folder has no checkpoint yet';
  }
  kernels(tower: number): StepImage | null {
    return this.live?.kernels(tower) ?? null;
  }
  get testImages(): readonly { index: number; label: number }[] {
    return this.live?.testImages ?? [];
  }
  get layers(): readonly string[] {
    return this.live?.layers ?? [];
  }
  testImagePng(index: number): Promise<Uint8Array> {
    if (!this.live) throw new UserError('no test images before the first checkpoint');
    return this.live.testImagePng(index);
  }
  activations(tower: number, index: number, layer: string): Promise<StepImage> {
    if (!this.live) throw new UserError('no feature maps before the first checkpoint');
    return this.live.activations(tower, index, layer);
  }

  watching(on: boolean): void {
    this.watched = on;
    if (this.live) return this.live.watching(on);
    if (on && !this.timer) {
      void this.look();
      this.timer = setInterval(() => void this.look(), this.everyMs);
      this.timer.unref();
    } else if (!on) this.stop();
  }

  /** Looks for the first checkpoint (one look at a time); once there, its pictures, watched if a page watches. */
  look(): Promise<void> {
    this.looking ??= this.open()
      .then((live) => {
        if (!live || this.live) return;
        this.live = live;
        this.stop();
        if (this.watched) live.watching(true);
      })
      // said, and looked for again at the next look
      .catch((e: unknown) => this.info(`the pictures: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => (this.looking = null));
    return this.looking;
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export interface RunDashboardOptions {
  readonly runDir: string;
  readonly host: string;
  readonly port: number;
  /** Seconds between looks for a newer checkpoint (its kernels) while a page watches. */
  readonly refreshS: number;
  /** How often metrics.jsonl is read for new lines (ms; default 1000). */
  readonly followMs?: number;
  readonly backend?: RequestedBackend;
  /** The data set for the feature maps' test images (default: the run's own). */
  readonly data?: string;
  readonly cacheDir?: string;
  readonly info: (line: string) => void;
}

export interface RunDashboard {
  readonly url: string;
  readonly feed: DashboardFeed;
  close(): Promise<void>;
}

export async function openRunDashboard(o: RunDashboardOptions): Promise<RunDashboard> {
  const metrics = runMetricsFile(o.runDir);
  const feed = new DashboardFeed();
  let spec: ModelSpec | null = null;
  const left = new LeftOut();
  let n = 0;
  const follower = new LineFollower(metrics, (line) => {
    n++;
    let e: { event?: string; preset?: string };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      // a torn last line, cut off when the run folder is opened again
      left.add(n, 'not JSON');
      return;
    }
    const why = eventProblem(e);
    if (why !== null) {
      left.add(n, why);
      return;
    }
    if (e.event === 'run' && spec === null && typeof e.preset === 'string') spec = getPreset(e.preset);
    feed.record(e);
  });
  follower.poll();
  if (!feed.started || spec === null) throw new UserError(`${metrics} holds no run (no "run" line)`);
  const said = left.describe(metrics);
  if (said) o.info(said);
  const follow = setInterval(() => follower.poll(), o.followMs ?? 1000);
  follow.unref();

  // the pictures: from the latest checkpoint, once the run has one
  const latest = new LatestCheckpoint(o.runDir, { backend: o.backend ?? 'auto', data: o.data, cacheDir: o.cacheDir, info: o.info });
  const imagesOf = async (first: CheckpointSource): Promise<LiveImages> => {
    let test = null;
    try {
      // the run's own data, moved or not there from here: the kernels and curves go on without the feature maps
      const dataName = first.model.dataName();
      if (dataName !== null) {
        const data = await openHeldOutFor(first.model, dataName, o.cacheDir, o.info);
        test = await testBatch(data, o.info);
        await data.close();
      }
    } catch (e) {
      o.info(`no test images for the feature maps: ${(e as Error).message}`);
    }
    return new LiveImages({ inspector: latest, stepsDone: () => latest.step, spec: first.spec, feed, testBatch: test, refreshMs: o.refreshS * 1000, info: o.info });
  };
  const first = await latest.current();
  let images: DashboardImages;
  if (first) images = await imagesOf(first);
  else {
    o.info(
      feed.ended
        ? `${o.runDir} has no checkpoint, and its run has ended (a finished run may keep only the model exported from it): the curves only, unless a resumed session writes one (looked for every ${o.refreshS} s while a page is open)`
        : `${o.runDir} has no checkpoint yet: the curves until one is written (looked for every ${o.refreshS} s while a page is open), then its kernels and feature maps`,
    );
    images = new FirstCheckpointImages(async () => {
      const c = await latest.current();
      if (!c) return null;
      o.info(`${path.basename(latestCheckpoint(checkpointDir(o.runDir)) ?? '')}: the kernels and feature maps from now on`);
      return imagesOf(c);
    }, o.refreshS * 1000, o.info, () => feed.ended);
  }

  const server = new DashboardServer({ host: o.host, port: o.port, feed, images });
  let url: string;
  try {
    url = await server.start();
    if (server.exposure) o.info(server.exposure);
  } catch (e) {
    clearInterval(follow);
    await latest.close();
    throw listenError(o.host, o.port, e);
  }
  return {
    url,
    feed,
    close: async () => {
      clearInterval(follow);
      images.watching(false);
      await server.close();
      await latest.close();
    },
  };
}
