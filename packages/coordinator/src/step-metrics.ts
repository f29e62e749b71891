/** A step's metrics line (and an evaluation batch's worker figures) from the two workers' replies. */
import { trafficTotals, type EvaluateReply, type StepReply } from '@alexnet-mp/worker';
import type { LayerNormsRow, StepMetrics, WorkerStepMetrics } from './coordinator-types.js';

/**
 * The time a step's rates count: what the coordinator measured, but never less than the workers' own time for it (a
 * queued step whose replies were already there when the coordinator looked measures near 0).
 */
export const paceMs = (ms: number, workers: readonly Pick<WorkerStepMetrics, 'total_ms'>[]): number => Math.max(ms, ...workers.map((w) => w.total_ms));

/** Each worker's times and traffic in one step, from its StepReply. */
export function workerStepMetrics(replies: readonly StepReply[]): WorkerStepMetrics[] {
  return replies.map((r) => {
    const tt = trafficTotals(r.traffic);
    const rss = Number(r.rss_bytes ?? 0);
    return {
      tower: r.tower,
      total_ms: r.timing.total_ms,
      compute_ms: r.timing.compute_ms,
      exchange_ms: r.timing.exchange_ms,
      update_ms: r.timing.update_ms,
      exchange_hidden_ms: r.timing.exchange_hidden_ms ?? 0,
      sent_bytes: tt.sent,
      received_bytes: tt.received,
      messages_sent: tt.messagesSent,
      messages_received: tt.messagesReceived,
      ...(rss > 0 ? { rss_mib: Math.round((rss / 2 ** 20) * 10) / 10 } : {}),
    };
  });
}

/** The `step` metrics line of step `step`, which took `ms` from the coordinator's side; the loss from tower 0's reply. */
export function stepMetrics(step: number, lr: number, microBatches: number, ms: number, replies: readonly StepReply[], workers: WorkerStepMetrics[]): StepMetrics {
  const r0 = replies[0]!;
  return {
    event: 'step',
    step,
    lr,
    loss: r0.loss,
    top1_error: 1 - r0.correct / r0.batch,
    top5_error: 1 - r0.correct_top5 / r0.batch,
    batch: r0.batch,
    micro_batches: microBatches,
    ms,
    // a queued step's replies may have waited while the coordinator took the previous step's: `ms` (the time
    // between the two, whose sum is the run's) then reads short, never the workers' own time on the step
    images_per_s: (r0.batch / paceMs(ms, workers)) * 1000,
    crossing_bytes: workers[0]!.sent_bytes + workers[1]!.sent_bytes,
    workers,
    traffic: replies.map((r) => r.traffic),
    ...layerNormsOf(replies),
  };
}

/** `{ layer_norms }` when both workers read their layers' norms this step (older workers never do), else nothing. */
function layerNormsOf(replies: readonly StepReply[]): { layer_norms?: LayerNormsRow[] } {
  // both towers' or none: one tower's alone (an older peer) would read as the whole layer's
  if (!replies.every((r) => (r.layer_norms ?? []).length > 0)) return {};
  return { layer_norms: replies.flatMap((r) => r.layer_norms!.map((n) => ({ tower: r.tower, layer: n.layer, weight: n.weight_norm, update: n.update_norm, bias: n.bias_norm }))) };
}

/** Each worker's times and traffic in one evaluation batch, from its EvaluateReply. */
export function workerEvalMetrics(replies: readonly EvaluateReply[]): { tower: number; compute_ms: number; exchange_ms: number; sent_bytes: number; received_bytes: number }[] {
  return replies.map((r) => {
    const tt = trafficTotals(r.traffic);
    return { tower: r.tower, compute_ms: r.timing.compute_ms, exchange_ms: r.timing.exchange_ms, sent_bytes: tt.sent, received_bytes: tt.received };
  });
}
