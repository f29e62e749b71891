/** Worker thread body of BatchThread (batch-thread.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { BatchMaker } from './batches.js';
import { evalBatchF32, evalBatchU8 } from './eval.js';
import { openSet } from './set-ref.js';
import type { BatchRequest, BatchThreadOptions } from './batch-thread.js';
import type { DecodedSet } from './decoded-set.js';

const port = parentPort!;
const o = (workerData as { data: BatchThreadOptions }).data;
let maker: BatchMaker | null = null;
let heldOut: DecodedSet | null = null;

port.on('message', (m: BatchRequest & { id: number }) => {
  try {
    let value: { images: ArrayBufferView };
    if (m.op === 'u8' || m.op === 'f32') {
      maker ??= new BatchMaker(openSet(o.train, o.size, o.memoryLimit), o.maker);
      value = m.op === 'u8' ? maker.u8(m.step, m.size) : maker.f32(m.step, m.size);
    } else {
      const r = m as Extract<BatchRequest, { op: 'eval-u8' | 'eval-f32' }>;
      if (!o.heldOut) throw new Error('no held-out split to evaluate on');
      heldOut ??= openSet(o.heldOut, o.size, o.memoryLimit);
      const mean = o.maker.mean ?? o.maker.stats?.mean ?? [128, 128, 128];
      value =
        r.op === 'eval-u8'
          ? evalBatchU8(heldOut, r.start, r.count, r.crop, r.mode)
          : evalBatchF32(heldOut, r.start, r.count, r.crop, r.mode, mean, o.maker.scale ?? 64);
    }
    const transfer = Object.values(value)
      .filter((v): v is ArrayBufferView => ArrayBuffer.isView(v))
      .map((v) => v.buffer as ArrayBuffer);
    port.postMessage({ id: m.id, ok: true, value }, [...new Set(transfer)]);
  } catch (e) {
    const err = e as Error & { path?: string };
    port.postMessage({ id: m.id, ok: false, error: { name: err.name, message: err.message, path: err.path } });
  }
});
