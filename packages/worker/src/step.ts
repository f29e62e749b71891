/**
 * A training step on one tower: the forward pass with the crossings, the loss on tower 0, the backward pass
 * sending each peer its slice of the input gradients, and the local SGD update (see worker.ts for the order):
 * each segment's first layer computes its input gradient first, and its weight gradients and the segment's
 * update run while that input gradient is on the wire (the gradients are final by then, and a layer's update
 * reads only its own), the first segment's at the end. A step that fails
 * part way leaves the worker FAILED (worker.ts), its partly updated tower replaced at the next Configure.
 * A step cut into micro-batches (StepRequest.micro_batches > 1) runs in pipeline.ts instead.
 */
import { mean, topKCorrect, type DeviceTensor, type SgdHyper, type StepContext, type Tower } from '@alexnet-mp/core';
import { CrossingTensors } from './crossing-tensors.js';
import type { LayerNorms, StepReply, StepRequest } from './protocol.js';
import { stepPhase } from './exchange.js';
import { normaliseImages } from './images.js';
import { openCrossings, trafficOf } from './crossings.js';
import { phaseKey, type Crossings, type Run, type SegmentTap, type WorkerContext } from './run.js';
import { pipelinedStep, type PipelinedStep } from './pipeline.js';
import { layerNorms } from './layer-norms.js';

/**
 * The forward pass of tower `tw` with the crossing exchanges: [tower 0's; tower 1's] into every
 * segment after a crossing; at fc7 only tower 1 sends. Returns the logits (host) on tower 0, null on tower 1.
 * Each output stays on the device; what is sent is read back (crossing-tensors.ts).
 */
export async function forwardPass(w: WorkerContext, tw: Tower, images: Float32Array, ctx: StepContext, x: Pick<Crossings, 'cross'>, tap?: SegmentTap): Promise<Float32Array | null> {
  // forwardSegment reads the classifier's output back
  return (await forwardSegments(w, tw, images, ctx, x, tap, true)) as Float32Array | null;
}

/** forwardPass, the logits left where the kernels put them unless `logitsOnHost`. */
async function forwardSegments(w: WorkerContext, tw: Tower, images: Float32Array, ctx: StepContext, x: Pick<Crossings, 'cross'>, tap: SegmentTap | undefined, logitsOnHost: boolean): Promise<DeviceTensor | null> {
  const t = w.tower;
  const segs = w.segments;
  const last = segs.length - 1;
  const at = new CrossingTensors(tw);
  // with a tap (inspection), both towers stop after the tapped segment
  const tapAt = (i: number) => (tap?.segment === i ? tap.tap : undefined);
  let out = await tw.forwardSegmentOnDevice(0, images, ctx, tapAt(0));
  if (tap?.segment === 0) return null;
  for (let i = 1; i <= last; i++) {
    const point = segs[i]!.crossing!;
    if (segs[i]!.tower0Only) {
      // the classifier runs on tower 0 only: tower 1 sends its fc7, tower 0 sends nothing
      if (t === 1) {
        await x.cross(point, 'FORWARD', await at.toSend(i, out), false);
        return null;
      }
      const theirs = (await x.cross(point, 'FORWARD', null, true))!;
      const input = await at.join(i, out, theirs);
      return logitsOnHost ? tw.forwardSegment(i, input, ctx, tapAt(i)) : tw.forwardSegmentOnDevice(i, input, ctx, tapAt(i));
    }
    const theirs = (await x.cross(point, 'FORWARD', await at.toSend(i, out), true))!;
    out = await tw.forwardSegmentOnDevice(i, await at.join(i, out, theirs), ctx, tapAt(i));
    if (tap?.segment === i) return null;
  }
  throw new Error('the model has no classifier segment');
}

export async function runStep(w: WorkerContext, run: Run, req: StepRequest, signal: AbortSignal): Promise<StepReply> {
  const t0 = performance.now();
  const step = req.step;
  w.trace?.beginStep(run.id, step);
  const phase = stepPhase(step);
  const traffic = trafficOf(w, run, phase);
  const x = openCrossings(w, run, phase, run.batch, traffic, signal);
  const hyper = { lr: req.hyper.lr, momentum: req.hyper.momentum, weightDecay: req.hyper.weight_decay, decayBiases: req.hyper.no_bias_decay !== true };
  // 0 from an older coordinator: the whole batch (the worker's step handler checked the count)
  const count = req.micro_batches || 1;
  // out of memory, a validation error: the step computed garbage, which gpu.js does not raise (webgpu)
  let norms: LayerNorms[] | undefined;
  let normsMs = 0;
  const { lossInfo, updateMs } = await w.device.checked(`step ${step}`, async () => {
    const done = count > 1 ? await pipelinedStep(w, run, req, count, x, hyper, signal) : await wholeStep(w, run, req, x, hyper, signal);
    // the peer took every tensor sent (the pass went on as soon as each was on its way)
    await x.acked();
    if (req.layer_norms === true) {
      // the parameters after the update (on webgpu read back from the device), outside the step's own time
      const tn = performance.now();
      norms = layerNorms(w.spec, w.tower, await run.tower.syncParams());
      normsMs = performance.now() - tn;
    }
    return done;
  });

  run.stepsDone = step + 1;
  run.phaseTraffic.delete(phaseKey(phase));
  run.mailbox.dropBefore(stepPhase(run.stepsDone));
  run.total.add(traffic);
  run.lastTraffic = traffic;
  const tEnd = performance.now();
  w.trace?.endStep(run.id, step, t0, tEnd);
  const total = tEnd - t0 - normsMs;
  run.lastTiming = { total_ms: total, compute_ms: total - x.exchangeMs - updateMs, exchange_ms: x.exchangeMs, update_ms: updateMs, exchange_hidden_ms: x.exchangeHiddenMs };
  return {
    step,
    tower: w.tower,
    has_loss: lossInfo !== null,
    loss: lossInfo?.loss ?? 0,
    correct: lossInfo?.correct ?? 0,
    correct_top5: lossInfo?.top5 ?? 0,
    batch: run.batch,
    timing: run.lastTiming,
    traffic: traffic.list(),
    rss_bytes: process.memoryUsage.rss(),
    ...(norms ? { layer_norms: norms } : {}),
  };
}

/** The step on the whole batch at once (StepRequest.micro_batches 0 or 1). */
async function wholeStep(w: WorkerContext, run: Run, req: StepRequest, x: Crossings, hyper: SgdHyper, signal: AbortSignal): Promise<PipelinedStep> {
  const t = w.tower;
  const tw = run.tower;
  const segs = w.segments;
  const last = segs.length - 1;
  const ctx: StepContext = { seed: run.seed, step: req.step, train: true };
  const cross = x.cross;

  // ---- forward (lossAndGradient reads the logits back)
  await forwardSegments(w, tw, normaliseImages(req.images, run.input), ctx, x, undefined, false);

  // ---- loss (tower 0) and backward; a segment's layers are updated while its input gradient crosses
  let updateMs = 0;
  const updateSegment = (i: number) => async () => {
    signal.throwIfAborted();
    // the segment's first layer's weight gradients, left for now by its backward (weightsLater): computed while
    // its input gradient crosses, counted as compute
    await tw.weightGradients();
    const tu = performance.now();
    await tw.update(hyper, tw.paramLayers(i));
    updateMs += performance.now() - tu;
  };
  const labels = Float32Array.from(req.labels);
  let lossInfo: { loss: number; correct: number; top5: number } | null = null;
  const at = new CrossingTensors(tw);
  let d: DeviceTensor;
  const fc7 = segs[last]!.crossing!;
  if (t === 0) {
    const { losses, logits, dlogits } = await tw.lossAndGradient(labels);
    // the classifier gives the gradient of both towers' fc7: tower 1's half goes back to it (tower 1 waits for
    // it), then the step's loss and accuracy are counted while it travels
    const dIn = (await tw.backwardSegmentOnDevice(last, dlogits, { weightsLater: true }))!;
    const classes = w.spec.classes;
    await x.crossDuring(fc7, 'BACKWARD', await at.peerSlice(last, dIn), false, async () => {
      lossInfo = { loss: mean(losses), correct: topKCorrect(logits, labels, classes, 1), top5: topKCorrect(logits, labels, classes, Math.min(5, classes)) };
      await updateSegment(last)();
    });
    d = await at.ownSlice(last, dIn);
  } else {
    d = (await cross(fc7, 'BACKWARD', null, true))!;
  }
  for (let i = last - 1; i >= 0; i--) {
    // the input gradient first where it crosses: the weight gradients are computed while it travels (updateSegment)
    const g = await tw.backwardSegmentOnDevice(i, d, { weightsLater: i > 0 });
    if (i > 0) {
      const theirs = (await x.crossDuring(segs[i]!.crossing!, 'BACKWARD', await at.peerSlice(i, g!), true, updateSegment(i)))!;
      d = await at.sum(i, await at.ownSlice(i, g!), theirs);
    }
  }

  // ---- the update of the first segment (nothing crosses after it), and the step's intermediates freed
  signal.throwIfAborted();
  const tu = performance.now();
  await tw.update(hyper);
  updateMs += performance.now() - tu;
  return { lossInfo, updateMs };
}
