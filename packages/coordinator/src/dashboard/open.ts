/** Starts the dashboard of a coordinator's run: the feed of its metrics, the pictures from its workers, the HTTP server. */
import type { ModelSpec } from '@alexnet-mp/core';
import type { U8Batch } from '../batch-source.js';
import type { Coordinator } from '../coordinator.js';
import type { TrainingData } from '../training-data.js';
import { DashboardFeed } from './feed.js';
import { LiveImages, MAX_TEST_IMAGES } from './live-images.js';
import { LiveInspector } from '../inspect/live.js';
import { DashboardServer } from './server.js';
import { workerViews } from './worker-status.js';
import { UserError } from '../cli/errors.js';

/** Why the dashboard's server could not listen, in one line for the user. */
export function listenError(host: string, port: number, e: unknown): UserError {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'EADDRINUSE' ? 'the port is in use (--ui-port 0 picks a free one)' : err.code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : err.message;
  return new UserError(`the dashboard cannot listen on ${host}:${port}: ${why}`);
}

export interface OpenDashboardOptions {
  readonly host: string;
  /** 0: a free port. */
  readonly port: number;
  /** Seconds between kernel fetches while a page watches. */
  readonly refreshS: number;
  readonly coordinator: Coordinator;
  /** The run's inspector, when the coordinator has one already (its calls are then queued with the dashboard's). */
  readonly inspector?: LiveInspector;
  readonly spec: ModelSpec;
  /** Where the feature maps' test images come from: one held-out batch (none without a held-out split). */
  readonly data: Pick<TrainingData, 'heldOut'>;
  readonly info: (line: string) => void;
}

export interface Dashboard {
  readonly url: string;
  /** Every event the coordinator logs goes here (MetricsLog.observe). */
  readonly feed: DashboardFeed;
  close(): Promise<void>;
}

/** One batch of held-out images (real data's spread over the split, synthetic data's first), or null (with a note) when the data has no held-out split. */
export async function testBatch(data: Pick<TrainingData, 'heldOut'>, info: (line: string) => void): Promise<U8Batch | null> {
  try {
    for await (const b of data.heldOut(MAX_TEST_IMAGES, 1, 'centre').batches()) return b;
  } catch (e) {
    info(`dashboard: no test images for the feature maps (${(e as Error).message})`);
  }
  return null;
}

export async function openDashboard(o: OpenDashboardOptions): Promise<Dashboard> {
  const feed = new DashboardFeed();
  const c = o.coordinator;
  const images = new LiveImages({ inspector: o.inspector ?? new LiveInspector(c, o.spec), stepsDone: () => c.stepsCompleted, spec: o.spec, feed, testBatch: await testBatch(o.data, o.info), refreshMs: o.refreshS * 1000, info: o.info });
  const server = new DashboardServer({
    host: o.host,
    port: o.port,
    feed,
    images,
    workers: () => workerViews(c.clients.map((client, t) => ({ client, address: c.o.workers[t]!, host: c.handshakes?.[t]?.hostname ?? '' }))),
  });
  let url: string;
  try {
    url = await server.start();
  } catch (e) {
    throw listenError(o.host, o.port, e);
  }
  o.info(`dashboard at ${url}`);
  if (server.exposure) o.info(server.exposure);
  return {
    url,
    feed,
    close: async () => {
      images.watching(false);
      await server.close();
    },
  };
}
