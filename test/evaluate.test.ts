/**
 * Evaluation on two workers (Worker.Evaluate, Peer.EvalExchange) against the
 * one-process trainer's predict, with real worker processes and gRPC on
 * loopback: the same logits for evaluation batches of another size than the
 * training batch (a smaller one runs padded in the training tower), only
 * forward crossing tensors crossing, and training carrying on unchanged afterwards.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { GroupedTrainer, crossingSizes, tiny, topKCorrect, type SgdHyper, type TowerParams } from '@alexnet-mp/core';
import { Mailbox, evalPhase, inputNormalisation, mailKey, meanCrossEntropy, normaliseImages, stepPhase, trafficTotals, type CrossingTraffic, type LayerTensors, type StatusReply } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource, heldOutSet, type EvalBatchResult, type EvalMetrics, type EvalResult, type StepMetrics, type U8Batch } from '@alexnet-mp/coordinator';
import { maxRelError, startWorker } from './helpers.js';

const B = 8;
const SEED = 11;
// the default rule (no decay on biases) with a strong decay, so that a worker decaying its biases anyway shows in the parameters
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.05 };
/** The held-out set evaluated during `run`: 2 batches of 5 (not the training batch size). */
const HELD_OUT = { batch: 5, batches: 2 };

interface Fixture {
  /** run(2 steps) with an evaluation after step 2. */
  runSteps: StepMetrics[];
  runEvals: EvalMetrics[];
  /** Then evaluate() of a batch of 5 and one of B (the training size: the training tower itself). */
  explicit: EvalResult;
  explicitBatches: U8Batch[];
  /** Then the batch of 5 again, alone (evaluateBatch: per-point traffic). */
  single: EvalBatchResult;
  /** Then one more training step. */
  after: StepMetrics;
  status: [StatusReply, StatusReply];
  /** Each worker's parameters and momentum after the three steps. */
  params: [Map<string, LayerTensors>, Map<string, LayerTensors>];
  refusal: unknown;
  /** Both workers' output lines. */
  workerLogs: () => string;
  oracle: {
    params: [TowerParams, TowerParams];
    losses: number[];
    heldOut: { logits: Float32Array; labels: Uint32Array }[];
    explicit: Float32Array[];
  };
}

let fixture: Promise<Fixture> | null = null;
const cleanups: (() => Promise<void> | void)[] = [];
const onCleanup = (f: () => Promise<void> | void) => cleanups.push(f);
test.after.always(async () => {
  for (const f of cleanups.reverse()) await f();
});

function setUp(): Promise<Fixture> {
  fixture ??= (async () => {
    const [w0, w1] = await Promise.all([startWorker(onCleanup, 0, ['--max-batch', String(B)]), startWorker(onCleanup, 1, ['--max-batch', String(B)])]);
    const source = new SyntheticSource(tiny, SEED);
    const set = heldOutSet('synthetic', tiny, SEED, HELD_OUT.batch, HELD_OUT.batches);
    const coordinator = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source, eval: { every: 2, set } });
    onCleanup(() => coordinator.close());
    const oraclePromise = GroupedTrainer.create({ spec: tiny, backend: 'webasm', batch: B, seed: SEED, hyper, fallback: { onFallback: 'throw' } });
    await coordinator.start();

    const runEvals: EvalMetrics[] = [];
    const runSteps = await coordinator.run(2, () => {}, { onEval: (m) => runEvals.push(m) });
    // a batch of another size than the training batch (5 is cached from the held-out set), and one of the training size
    const explicitBatches = [await new SyntheticSource(tiny, SEED + 1).batch(0, 5), await new SyntheticSource(tiny, SEED + 1).batch(1, B)];
    const explicit = await coordinator.evaluate(explicitBatches);
    const single = await coordinator.evaluateBatch(explicitBatches[0]!);
    // an evaluation out of order is refused without harm
    let refusal: unknown = null;
    try {
      await coordinator.clients[1].evaluate({ run_id: coordinator.runId, evaluation: 99, step: 2, images: explicitBatches[0]!.images, labels: [] });
    } catch (e) {
      refusal = e;
    }
    const after = await coordinator.step(await source.batch(2, B));
    const status = (await Promise.all(coordinator.clients.map((c) => c.status()))) as [StatusReply, StatusReply];
    const params = (await Promise.all(coordinator.clients.map((c) => c.parameters(true)))) as Fixture['params'];

    // the one-process trainer: 2 steps, the same evaluations (predict), one more step
    const oracle = await oraclePromise;
    onCleanup(() => oracle.destroy());
    const train = async (s: number) => {
      const b = await source.batch(s, B);
      return (await oracle.trainStep({ images: normaliseImages(b.images, inputNormalisation(tiny)), labels: Float32Array.from(b.labels) })).loss;
    };
    const losses = [await train(0), await train(1)];
    const heldOut: { logits: Float32Array; labels: Uint32Array }[] = [];
    for await (const b of set.batches()) heldOut.push({ logits: await oracle.predict(normaliseImages(b.images, inputNormalisation(tiny)), b.labels.length), labels: b.labels });
    const explicitOracle: Float32Array[] = [];
    for (const b of explicitBatches) explicitOracle.push(await oracle.predict(normaliseImages(b.images, inputNormalisation(tiny)), b.labels.length));
    losses.push(await train(2));
    const workerLogs = () => w0.p.output() + '\n' + w1.p.output();
    return { runSteps, runEvals, explicit, explicitBatches, single, after, status, params, refusal, workerLogs, oracle: { params: oracle.params, losses, heldOut, explicit: explicitOracle } };
  })();
  return fixture;
}

test.serial("two-worker evaluation gives the one-process trainer's predict logits, loss and top-1, for batch sizes other than training's", async (t) => {
  const f = await setUp();
  // the explicit evaluate(): logits per batch
  t.deepEqual(f.explicit.logits.map((l) => l.length), [tiny.classes * 5, tiny.classes * B]);
  let worst = 0;
  for (const [i, l] of f.explicit.logits.entries()) {
    const e = maxRelError(l, f.oracle.explicit[i]!);
    worst = Math.max(worst, e);
    t.true(e < 1e-5, `batch ${i} (${f.explicitBatches[i]!.labels.length} images): logits' relative error ${e.toExponential(2)}`);
  }
  t.log(`logits of evaluation batches of 5 and ${B} images (training batch ${B}): worst relative error ${worst.toExponential(2)}`);
  // the batches of 5 ran padded in the training tower (batch-padding.ts): no second tower was built
  t.notRegex(f.workerLogs(), /built the evaluation tower/);
  const expect = (sets: { logits: Float32Array; labels: Uint32Array }[]) => {
    let images = 0;
    let loss = 0;
    let c1 = 0;
    let c5 = 0;
    for (const { logits, labels } of sets) {
      images += labels.length;
      loss += meanCrossEntropy(logits, labels, tiny.classes) * labels.length;
      c1 += topKCorrect(logits, labels, tiny.classes, 1);
      c5 += topKCorrect(logits, labels, tiny.classes, Math.min(5, tiny.classes));
    }
    return { images, loss: loss / images, top1_error: 1 - c1 / images, top5_error: 1 - c5 / images };
  };
  const ex = expect(f.oracle.explicit.map((logits, i) => ({ logits, labels: f.explicitBatches[i]!.labels })));
  t.is(f.explicit.images, 5 + B);
  t.true(Math.abs(f.explicit.loss - ex.loss) / ex.loss < 1e-5, `loss ${f.explicit.loss} vs ${ex.loss}`);
  t.is(f.explicit.top1_error, ex.top1_error);
  t.is(f.explicit.top5_error, ex.top5_error);
  t.is(f.explicit.step, 2);

  // the held-out evaluation during run(): after step 2 (every 2, and the last step)
  t.deepEqual(f.runEvals.map((e) => [e.event, e.step, e.images, e.batches]), [['eval', 2, HELD_OUT.batch * HELD_OUT.batches, HELD_OUT.batches]]);
  const ho = expect(f.oracle.heldOut);
  const e = f.runEvals[0]!;
  t.true(Math.abs(e.loss - ho.loss) / ho.loss < 1e-5, `held-out loss ${e.loss} vs ${ho.loss}`);
  t.is(e.top1_error, ho.top1_error);
  t.log(`held-out after 2 steps: loss ${e.loss.toFixed(4)} (one process ${ho.loss.toFixed(4)}), top-1 error ${e.top1_error}`);

  // training is untouched by the evaluations: the losses before and after them are the one-process trainer's
  const losses = [...f.runSteps.map((m) => m.loss), f.after.loss];
  for (const [s, l] of losses.entries()) t.true(Math.abs(l - f.oracle.losses[s]!) / f.oracle.losses[s]! < 1e-5, `step ${s}: loss ${l} vs ${f.oracle.losses[s]}`);

  // and the parameters after them: the default update rule (biases undecayed) on the workers too
  let biases = 0;
  for (const tower of [0, 1] as const) {
    for (const [name, lp] of f.oracle.params[tower]) {
      const rp = f.params[tower].get(name)!;
      for (const k of ['w', 'b', 'vw', 'vb'] as const) t.true(maxRelError(rp[k]!, lp[k]) < 1e-5, `tower ${tower} ${name}.${k}: relative error ${maxRelError(rp[k]!, lp[k]).toExponential(2)}`);
      biases += lp.b.filter((b) => Math.abs(b) > 0.5).length;
    }
  }
  t.true(biases > 0, 'some biases are large enough (the ones-initialised) for decay on them to show');

  // the same batch evaluated again with the same parameters: the same logits
  t.deepEqual(f.single.logits, f.explicit.logits[0]);
  t.is(f.single.evaluation, 4);

  // a refused Evaluate (out of order) leaves the worker ready; the coordinator's evaluations count 5
  t.is((f.refusal as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
  t.regex((f.refusal as grpc.ServiceError).details, /evaluation 99 out of order: this worker is at evaluation 5/);
  t.true(f.status.every((s) => s.state === 'READY' && s.steps_done === 3 && s.evaluations_done === 5), JSON.stringify(f.status.map((s) => [s.state, s.steps_done, s.evaluations_done, s.last_error])));
});

test.serial('an evaluation crosses exactly the forward crossing tensors (pool2, pool5, fc6 both ways, fc7 from tower 1), nothing backward', async (t) => {
  const f = await setUp();
  const expected = (n: number, tower: 0 | 1): CrossingTraffic[] =>
    crossingSizes(tiny, n).map(({ name, floats }) => {
      const both = name !== 'fc7';
      const sent = both || tower === 1 ? 4 * floats : 0;
      const received = both || tower === 0 ? 4 * floats : 0;
      return {
        point: name,
        forward_sent_bytes: sent,
        forward_received_bytes: received,
        backward_sent_bytes: 0,
        backward_received_bytes: 0,
        messages_sent: sent > 0 ? 1 : 0,
        messages_received: received > 0 ? 1 : 0,
      };
    });
  const perImage = crossingSizes(tiny, 1).reduce((s, c) => s + (c.name === 'fc7' ? 1 : 2) * 4 * c.floats, 0);
  t.is(perImage, 800, 'tiny: 800 bytes an image forward (half of the 1,600 of a training step)');
  // one evaluation of 5 images, per point, as each worker counted it
  t.deepEqual(f.single.traffic, [expected(5, 0), expected(5, 1)]);
  t.is(trafficTotals(f.single.traffic[0]!).sent + trafficTotals(f.single.traffic[1]!).sent, perImage * 5);
  // the explicit evaluation (5 + B images): what each worker sent and received, totals
  for (const tower of [0, 1] as const) {
    const want = [expected(5, tower), expected(B, tower)].map((l) => trafficTotals(l));
    const w = f.explicit.workers[tower]!;
    t.is(w.sent_bytes, want[0]!.sent + want[1]!.sent, `tower ${tower} sent`);
    t.is(w.received_bytes, want[0]!.received + want[1]!.received, `tower ${tower} received`);
  }
  t.is(f.explicit.crossing_bytes, perImage * (5 + B));
  t.is(f.runEvals[0]!.crossing_bytes, perImage * HELD_OUT.batch * HELD_OUT.batches);
  // Status: the run's evaluation traffic (5 evaluations: 5, 5, 5, B, 5 images; bytes grow with the images),
  // apart from the training steps' (3 steps of B)
  const scaled = (l: CrossingTraffic[], k: number, what: RegExp): CrossingTraffic[] =>
    l.map((e) => Object.fromEntries(Object.entries(e).map(([key, v]) => [key, typeof v === 'number' && what.test(key) ? v * k : v])) as unknown as CrossingTraffic);
  for (const tower of [0, 1] as const) {
    t.deepEqual(f.status[tower].eval_traffic, scaled(expected(5 + 5 + 5 + B + 5, tower), 5, /^messages/), `tower ${tower}: evaluation traffic`);
    const step = f.after.traffic[tower]!;
    t.deepEqual(f.status[tower].run_traffic, scaled(step, 3, /./), `tower ${tower}: training traffic holds no evaluation`);
    t.true(step.every((e) => e.backward_sent_bytes + e.backward_received_bytes > 0), 'steps do cross backward');
  }
});

test('evaluation and step tensors of the same number and point never meet in the mailbox', async (t) => {
  const m = new Mailbox();
  const never = new AbortController().signal;
  const a = new Float32Array([1]);
  const b = new Float32Array([2]);
  m.put(mailKey(stepPhase(3), 'pool2', 'FORWARD'), a);
  m.put(mailKey(evalPhase(3), 'pool2', 'FORWARD'), b);
  t.is(await m.take(mailKey(evalPhase(3), 'pool2', 'FORWARD'), never, 1000, () => ''), b);
  m.put(mailKey(evalPhase(4), 'pool5', 'FORWARD'), b);
  // dropping the steps before 4 leaves evaluations alone, and the other way round
  m.dropBefore(stepPhase(4));
  t.is(await m.take(mailKey(evalPhase(4), 'pool5', 'FORWARD'), never, 1000, () => ''), b);
  m.put(mailKey(evalPhase(0), 'fc6', 'FORWARD'), b);
  m.dropBefore(evalPhase(5));
  await t.throwsAsync(m.take(mailKey(evalPhase(0), 'fc6', 'FORWARD'), never, 20, () => 'fc6'), { message: /no fc6 from the peer/ });
  await t.throwsAsync(m.take(mailKey(stepPhase(3), 'pool2', 'FORWARD'), never, 20, () => 'pool2'), { message: /no pool2 from the peer/ });
});
