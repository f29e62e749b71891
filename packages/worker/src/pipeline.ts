/**
 * A training step cut into micro-batches (StepRequest.micro_batches = N > 1): the batch of B images is run
 * as N micro-batches of B / N, segment by segment, so that micro-batch k's crossing tensor travels while
 * micro-batch k + 1's segment computes, forward and backward (proto/README.md, "Micro-batches").
 *
 * The arithmetic is the whole batch's: each micro-batch runs on a Tower of its own (its forward state is
 * needed by its backward) sharing the run's parameters; its dropout masks are its columns of the whole
 * batch's masks; its loss gradient is scaled from 1/(B/N) to 1/B, so that its weight gradients are its
 * part of the whole batch's sum, and the parts are summed (core's GradientSum) into the run's Tower,
 * which updates as in a whole step: each segment's layers while that segment's last input gradients
 * cross, the first segment's at the end. Only the order of additions differs from the one-process
 * trainer: the weights agree to float32 rounding (test/pipelined.test.ts).
 */
import { GradientSum, mean, microBatchProblem, microSlice, scaled, topKCorrect, Tower, type DeviceTensor, type SgdHyper, type StepContext } from '@alexnet-mp/core';
import { CrossingTensors } from './crossing-tensors.js';
import { setMaxListeners } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { StepRequest } from './protocol.js';
import { RpcError } from './rpc.js';
import { normaliseImages } from './images.js';
import type { Crossings, MicroBatch, Run, WorkerContext } from './run.js';
import { letTensorsLeave } from './crossings.js';

/**
 * A Step's micro_batches, checked before the step starts: 0 or 1 (the whole batch), or N dividing the batch,
 * the peer being a worker that takes micro-batches (an older one would refuse their tensors part way).
 */
export function checkStepMicroBatches(run: Run, count: number): void {
  if (count <= 1) return;
  const problem = microBatchProblem(run.batch, count);
  if (problem) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Step micro_batches: ${problem}`);
  if (!run.peer.features.includes('micro-batches')) {
    throw new RpcError(grpc.status.FAILED_PRECONDITION, `Step micro_batches ${count}: the peer at ${run.peer.address} is an older build that takes no micro-batches; use 1 (--micro-batches 1)`);
  }
}

/** The micro-batches' Towers of a run for one N, and the sum of their gradients. */
interface MicroTowers {
  readonly towers: Tower[];
  readonly sum: GradientSum;
}

/** Per training Tower (SetParameters replaces it, and its parameters with it), per N. */
const cache = new WeakMap<Tower, Map<number, MicroTowers>>();

/** The Towers of the `count` micro-batches of the run's batch, sharing the run's parameters; made once per N for the run. */
function microTowers(w: WorkerContext, run: Run, count: number): MicroTowers {
  let byCount = cache.get(run.tower);
  if (!byCount) {
    byCount = new Map();
    cache.set(run.tower, byCount);
  }
  let m = byCount.get(count);
  if (!m) {
    const n = run.batch / count;
    const towers = Array.from({ length: count }, (_, k) => new Tower(w.device, w.spec, w.tower, n, run.tower.store, { of: run.batch, at: k * n }));
    m = { towers, sum: new GradientSum(w.device) };
    byCount.set(count, m);
  }
  return m;
}

export interface PipelinedStep {
  /** Tower 0: the mean loss over the batch and the top-1 and top-5 counts; null on tower 1. */
  readonly lossInfo: { loss: number; correct: number; top5: number } | null;
  /** The update, the summing of the micro-batches' gradients included. */
  readonly updateMs: number;
}

/**
 * Forward, loss, backward and update of one step in `count` micro-batches on tower w.tower, its crossings
 * through `x` (begin/wait); every exchange started is waited for before it returns.
 */
export async function pipelinedStep(w: WorkerContext, run: Run, req: StepRequest, count: number, x: Crossings, hyper: SgdHyper, signal: AbortSignal): Promise<PipelinedStep> {
  const t = w.tower;
  const segs = w.segments;
  const last = segs.length - 1;
  const B = run.batch;
  const n = B / count;
  const { towers: mt, sum } = microTowers(w, run, count);
  // every exchange in flight listens for the step's abort (its take, its send on the stream): a few per micro-batch
  setMaxListeners(16 * count + 16, signal);
  const ctx: StepContext = { seed: run.seed, step: req.step, train: true };
  const micro = (k: number): MicroBatch => ({ index: k, count });
  const ks = [...Array(count).keys()];
  /** Exchanges that only send: waited for at the end (until each tensor is on its way; the acks come in Crossings.acked). */
  const sends: Promise<unknown>[] = [];

  // ---- forward: segment by segment, micro-batch by micro-batch; each output crosses as soon as it is computed
  const images = normaliseImages(req.images, run.input);
  // each micro-batch's crossing tensors in device buffers of its own Tower's (crossing-tensors.ts)
  const at = ks.map((k) => new CrossingTensors(mt[k]!));
  const outs: DeviceTensor[] = [];
  let pending: Promise<Float32Array | null>[] = [];
  const sendForward = async (i: number, k: number) => {
    // the crossing into segment i: at the classifier, tower 1 only sends and tower 0 only takes
    const toClassifier = segs[i]!.tower0Only;
    const send = toClassifier && t === 0 ? null : await at[k]!.toSend(i, outs[k]!);
    const p = x.begin(segs[i]!.crossing!, 'FORWARD', send, !(toClassifier && t === 1), micro(k));
    if (toClassifier && t === 1) sends.push(p);
    pending[k] = p;
  };
  for (const k of ks) {
    outs[k] = await mt[k]!.forwardSegmentOnDevice(0, microSlice(images, w.spec.inputChannels, B, k * n, n), ctx);
    await sendForward(1, k);
    await letTensorsLeave();
  }
  for (let i = 1; i < last; i++) {
    for (const k of ks) {
      const theirs = (await x.wait(pending[k]!))!;
      outs[k] = await mt[k]!.forwardSegmentOnDevice(i, await at[k]!.join(i, outs[k]!, theirs), ctx);
      await sendForward(i + 1, k);
      await letTensorsLeave();
    }
  }

  // ---- the classifier (tower 0): forward, loss and backward a micro-batch at a time; d(fc7) of tower 1 goes back at once
  let updateMs = 0;
  /** Segment i's gradients summed into the run's Tower and its layers updated; segment 0's last, which ends the step there. */
  const update = async (i: number) => {
    signal.throwIfAborted();
    // the micro-batches' weight gradients of the segment's first layer, left for later by their backward: computed
    // now, while the last micro-batch's input gradient travels (counted as compute)
    for (const m of mt) await m.weightGradients();
    const tu = performance.now();
    const layers = run.tower.paramLayers(i);
    await sum.sum(mt, run.tower, layers);
    await run.tower.update(hyper, i > 0 ? layers : undefined);
    updateMs += performance.now() - tu;
  };
  const fc7 = segs[last]!.crossing!;
  const d: DeviceTensor[] = [];
  let lossInfo: PipelinedStep['lossInfo'] = null;
  if (t === 0) {
    const labels = Float32Array.from(req.labels);
    const classes = w.spec.classes;
    const losses = new Float32Array(B);
    let correct = 0;
    let top5 = 0;
    for (const k of ks) {
      const theirs = (await x.wait(pending[k]!))!;
      await mt[k]!.forwardSegmentOnDevice(last, await at[k]!.join(last, outs[k]!, theirs), ctx);
      const mine = labels.subarray(k * n, (k + 1) * n);
      const l = await mt[k]!.lossAndGradient(mine);
      losses.set(l.losses, k * n);
      correct += topKCorrect(l.logits, mine, classes, 1);
      top5 += topKCorrect(l.logits, mine, classes, Math.min(5, classes));
      // the kernel's gradient is of the micro-batch's mean loss: scaled to its part of the batch's mean
      const dlogits = scaled(await w.device.toHost(l.dlogits, classes * n), 1 / count);
      const dIn = (await mt[k]!.backwardSegmentOnDevice(last, dlogits, { weightsLater: true }))!;
      sends.push(x.begin(fc7, 'BACKWARD', await at[k]!.peerSlice(last, dIn), false, micro(k)));
      d[k] = await at[k]!.ownSlice(last, dIn);
      await letTensorsLeave();
    }
    lossInfo = { loss: mean(losses), correct, top5 };
    await update(last);
  } else {
    pending = ks.map((k) => x.begin(fc7, 'BACKWARD', null, true, micro(k)));
  }

  // ---- backward: each segment micro-batch by micro-batch, its input gradients crossing as they come (the
  // segment's first layer leaves its weight gradients for later: every micro-batch's input gradient goes out
  // first); the weight gradients and the segment's update while the last of them travel
  for (let i = last - 1; i >= 0; i--) {
    for (const k of ks) {
      if (i === last - 1 && t === 1) d[k] = (await x.wait(pending[k]!))!;
      else if (i < last - 1) {
        const theirs = (await x.wait(pending[k]!))!;
        d[k] = await at[k]!.sum(i + 1, d[k]!, theirs);
      }
      const g = await mt[k]!.backwardSegmentOnDevice(i, d[k]!, { weightsLater: i > 0 });
      if (i > 0) {
        pending[k] = x.begin(segs[i]!.crossing!, 'BACKWARD', await at[k]!.peerSlice(i, g!), true, micro(k));
        d[k] = await at[k]!.ownSlice(i, g!);
        await letTensorsLeave();
      }
    }
    await update(i);
  }
  await x.wait(Promise.all(sends));
  for (const m of mt) m.discardStep();
  return { lossInfo, updateMs };
}
