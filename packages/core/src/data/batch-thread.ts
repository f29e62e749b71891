/**
 * Batches made off the training thread: a worker thread opens the split
 * (set-ref.ts) and runs a BatchMaker; the training thread asks for batch k
 * and gets the pixel buffers transferred, not copied. With a Prefetcher on
 * top, the next batches are made while the current step runs.
 */
import type { Worker } from 'node:worker_threads';
import type { AugmentedBatch, AugmentedU8Batch, BatchMakerOptions } from './batches.js';
import type { EvalBatch, EvalBatchU8, ViewMode } from './eval.js';
import type { SetRef } from './set-ref.js';
import { startWorker } from './threads.js';
import { DataError } from './errors.js';

export interface BatchThreadOptions {
  readonly train: SetRef;
  readonly heldOut?: SetRef | null;
  /** Side the images are augmented from (resized to it if stored otherwise). */
  readonly size: number;
  readonly maker: BatchMakerOptions;
  /** Caches up to this many bytes are read whole into the worker's memory (default 1 GiB). */
  readonly memoryLimit?: number;
}

export type BatchRequest =
  | { op: 'u8' | 'f32'; step: number; size: number }
  | { op: 'eval-u8' | 'eval-f32'; start: number; count: number; crop: number; mode: ViewMode };

export class BatchThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;
  private closed = false;

  constructor(o: BatchThreadOptions) {
    this.worker = startWorker(new URL('./batch-worker.ts', import.meta.url), o);
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: { name: string; message: string; path?: string } }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) this.worker.unref();
      if (m.ok) w.resolve(m.value);
      else w.reject(m.error!.name === 'DataError' ? new DataError(m.error!.path ?? '', m.error!.message) : new Error(`batch thread: ${m.error!.message}`));
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', (e) => fail(new Error(`batch thread failed: ${e.message}`, { cause: e })));
    this.worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`batch thread exited with code ${code}`));
    });
  }

  private call<T>(req: BatchRequest): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new Error('batch thread closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...req });
    });
  }

  /** Training batch `step` of `size`, uint8 (for the coordinator). */
  u8(step: number, size: number): Promise<AugmentedU8Batch> {
    return this.call({ op: 'u8', step, size });
  }

  /** Training batch `step` of `size`, float32 (for the one-process trainer). */
  f32(step: number, size: number): Promise<AugmentedBatch> {
    return this.call({ op: 'f32', step, size });
  }

  evalU8(start: number, count: number, crop: number, mode: ViewMode): Promise<EvalBatchU8> {
    return this.call({ op: 'eval-u8', start, count, crop, mode });
  }

  evalF32(start: number, count: number, crop: number, mode: ViewMode): Promise<EvalBatch> {
    return this.call({ op: 'eval-f32', start, count, crop, mode });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new Error('batch thread closed'));
    this.waiting.clear();
    await this.worker.terminate();
  }
}
