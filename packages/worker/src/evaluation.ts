/**
 * An evaluation on one tower: the forward pass alone, without dropout, on a Tower for the evaluation's batch
 * size that shares the training tower's parameters; its crossings travel with Peer.EvalExchange.
 */
import { Tower, padBatch, takeBatch, topKCorrect, type StepContext, type TowerTap } from '@alexnet-mp/core';
import { activationShape, crossingShape, encodeTensor, type EvaluateReply, type EvaluateRequest, type GetActivationsReply, type GetActivationsRequest, type StepTiming } from './protocol.js';
import { evalPhase, type Traffic } from './exchange.js';
import { normaliseImages } from './images.js';
import { openCrossings, trafficOf } from './crossings.js';
import { forwardPass } from './step.js';
import { phaseKey, type Crossings, type Run, type SegmentTap, type WorkerContext } from './run.js';

/** Mean softmax cross-entropy, in float64, of logits laid out [class][image]. */
export function meanCrossEntropy(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  const N = labels.length;
  let sum = 0;
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[c * N + n]!);
    let z = 0;
    for (let c = 0; c < classes; c++) z += Math.exp(logits[c * N + n]! - max);
    sum += max + Math.log(z) - logits[labels[n]! * N + n]!;
  }
  return sum / N;
}

/**
 * The Tower that evaluates `n` images: the training tower up to the training batch (a smaller batch runs
 * padded, batch-padding.ts), else one per size (cached) sharing its parameters.
 */
export function evalTower(w: WorkerContext, run: Run, n: number): Tower {
  if (n <= run.batch) return run.tower;
  let tw = run.evalTowers.get(n);
  if (!tw) {
    tw = new Tower(w.device, w.spec, w.tower, n, run.tower.store);
    run.evalTowers.set(n, tw);
    w.log(`built the evaluation tower for batch ${n}`);
  }
  return tw;
}

/**
 * forwardPass of `n` images in tower `tw`, built for more: the images, the peer's crossing tensors and the
 * tapped output padded with zero images, what is sent and the logits cut back to `n` (the wire sees `n`).
 */
export async function paddedForwardPass(w: WorkerContext, tw: Tower, images: Float32Array, n: number, ctx: StepContext, x: Pick<Crossings, 'cross'>, tap?: SegmentTap): Promise<Float32Array | null> {
  const N = tw.batch;
  const spec = w.spec;
  // a layer's output channels in this tower (the first dimension of its [channel][image][...] tensor)
  const channelsAt = (layer: string) => crossingShape(spec, layer, n)[0]!;
  const padded: Pick<Crossings, 'cross'> = {
    cross: async (point, dir, send, take) => {
      const got = await x.cross(point, dir, send && takeBatch(send, channelsAt(point), N, n), take);
      return got && padBatch(got, channelsAt(point), n, N);
    },
  };
  const logits = await forwardPass(w, tw, padBatch(images, spec.inputChannels, n, N), ctx, padded, tap);
  if (tap?.tap.out) tap.tap.out = takeBatch(tap.tap.out, channelsAt(tap.tap.layer), N, n);
  return logits && takeBatch(logits, spec.classes, N, n);
}

/**
 * The forward pass of evaluation number `evaluation` (no dropout) on `n` images with its crossing exchanges
 * (EvalExchange), counted as an evaluation; with `tap`, stopped after the tapped segment.
 */
export async function evaluationPass(w: WorkerContext, run: Run, evaluation: number, images: Uint8Array, n: number, signal: AbortSignal, tap?: SegmentTap): Promise<{ logits: Float32Array | null; timing: StepTiming; traffic: Traffic }> {
  const t0 = performance.now();
  const phase = evalPhase(evaluation);
  const traffic = trafficOf(w, run, phase);
  const x = openCrossings(w, run, phase, n, traffic, signal);
  // no dropout (train: false); the seed and step do not matter then
  const ctx: StepContext = { seed: run.seed, step: run.stepsDone, train: false };
  const tw = evalTower(w, run, n);
  let logits: Float32Array | null;
  try {
    if (tw.batch === n) logits = await forwardPass(w, tw, normaliseImages(images, run.input), ctx, x, tap);
    else logits = await paddedForwardPass(w, tw, normaliseImages(images, run.input), n, ctx, x, tap);
  } finally {
    // the forward's intermediates (nothing else is resident between steps but the parameters)
    w.device.release();
  }
  await x.acked();
  run.evaluationsDone = evaluation + 1;
  run.phaseTraffic.delete(phaseKey(phase));
  run.mailbox.dropBefore(evalPhase(run.evaluationsDone));
  run.evalTotal.add(traffic);
  const total = performance.now() - t0;
  return { logits, timing: { total_ms: total, compute_ms: total - x.exchangeMs, exchange_ms: x.exchangeMs, update_ms: 0, exchange_hidden_ms: 0 }, traffic };
}

export async function runEvaluation(w: WorkerContext, run: Run, req: EvaluateRequest, n: number, signal: AbortSignal): Promise<EvaluateReply> {
  const { logits, timing, traffic } = await w.device.checked(`evaluation ${req.evaluation}`, () => evaluationPass(w, run, req.evaluation, req.images, n, signal));
  const classes = w.spec.classes;
  const hasLoss = logits !== null && req.labels.length === n;
  return {
    evaluation: req.evaluation,
    tower: w.tower,
    batch: n,
    has_loss: hasLoss,
    loss: hasLoss ? meanCrossEntropy(logits!, req.labels, classes) : 0,
    correct: hasLoss ? topKCorrect(logits!, req.labels, classes, 1) : 0,
    correct_top5: hasLoss ? topKCorrect(logits!, req.labels, classes, Math.min(5, classes)) : 0,
    logits: logits ? encodeTensor([classes, n], logits) : null,
    timing,
    traffic: traffic.list(),
  };
}

/** Inspection: this tower's output of `req.layer` (in segment `segment`) for n images, from the evaluation pass stopped after that segment. */
export async function runActivations(w: WorkerContext, run: Run, req: GetActivationsRequest, n: number, segment: number, signal: AbortSignal): Promise<GetActivationsReply> {
  const tap: TowerTap = { layer: req.layer };
  const pass = await w.device.checked(`the activations of ${req.layer}`, () => evaluationPass(w, run, req.evaluation, req.images, n, signal, { segment, tap }));
  const plan = w.segments[segment]!.plans.find((p) => p.layer.name === req.layer)!;
  return {
    evaluation: req.evaluation,
    tower: w.tower,
    layer: req.layer,
    has_activations: tap.out !== undefined,
    activations: tap.out ? encodeTensor(activationShape(plan.outShape, n), tap.out) : null,
    timing: pass.timing,
    traffic: pass.traffic.list(),
  };
}
