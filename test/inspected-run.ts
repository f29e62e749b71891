/**
 * For the inspection tests: a coordinator that trained `steps` steps on two running workers (tiny preset,
 * synthetic data, a checkpoint of the last step in `runDir`) and its inspection service, as `alexnet
 * coordinator --inspect-port` serves it; both closed through `register` (a test's teardown, or a list). And
 * the comparison of what the live path (the service, asking both workers) and the checkpoint path give.
 */
import type { ExecutionContext } from 'ava';
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource, checkpointDir, heldOutSet } from '@alexnet-mp/coordinator';
import { LiveInspector } from '../packages/coordinator/src/inspect/live.js';
import { startInspectService, type InspectService } from '../packages/coordinator/src/inspect/service.js';
import type { CheckpointSource, LiveSource } from '../packages/coordinator/src/inspect/source.js';
import { maxRelError } from './helpers.js';

export const inspectHyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

export async function inspectedRun(
  register: (f: () => Promise<void> | void) => void,
  workers: [string, string],
  runDir: string,
  o: { batch: number; seed: number; steps: number },
): Promise<{ coordinator: Coordinator; service: InspectService }> {
  const coordinator = new Coordinator({
    spec: tiny,
    workers,
    batch: o.batch,
    seed: o.seed,
    hyper: inspectHyper,
    source: new SyntheticSource(tiny, o.seed),
    checkpoint: { dir: checkpointDir(runDir), every: o.steps, keep: 1, extra: () => ({ data_name: 'synthetic', input_mean: null }) },
  });
  register(() => coordinator.close());
  await coordinator.start();
  await coordinator.run(o.steps, () => {});
  // the held-out examples as `alexnet coordinator` gives them (openTrainingData's heldOut for synthetic data)
  const inspector = new LiveInspector(coordinator, tiny, {
    classNames: [],
    examples: async (count) => {
      for await (const b of heldOutSet('synthetic', tiny, o.seed, count, 1).batches()) return b;
      throw new Error('no batch');
    },
  });
  const service = await startInspectService({ inspector, coordinator, data: 'synthetic', inputMean: [], port: 0 });
  register(() => service.close());
  return { coordinator, service };
}

/**
 * The live path gives the checkpoint path's answers for the checkpoint's weights (of step `step`): conv1's
 * kernels exactly; the feature maps of `image` (CHW bytes of the input's size) at conv2 (before any crossing),
 * conv3 (after pool2 crosses), fc7 (after three) and fc8 (tower 0 only) and the predictions' logits to 1e-4
 * relative; the same prediction images and labels; the two towers' maps differ.
 */
export async function liveMatchesCheckpoint(t: ExecutionContext, live: LiveSource, ck: CheckpointSource, image: Uint8Array, step: number): Promise<void> {
  t.is(ck.step, step);
  const [lk, ckk] = await Promise.all([live.kernels('conv1'), ck.kernels('conv1')]);
  t.is(lk.step, step);
  for (const tw of [0, 1]) t.deepEqual(Array.from(lk.towers[tw]!.w), Array.from(ckk.towers[tw]!.w), `conv1 tower ${tw}`);
  t.notDeepEqual(Array.from(lk.towers[0].w), Array.from(lk.towers[1].w));
  for (const layer of ['conv2', 'conv3', 'fc7', 'fc8']) {
    const [la, ca] = await Promise.all([live.activations(image, layer), ck.activations(image, layer)]);
    t.is(la.step, step);
    for (const tw of [0, 1]) {
      const a = la.towers[tw];
      const b = ca.towers[tw];
      if (layer === 'fc8' && tw === 1) {
        t.is(a, null);
        t.is(b, null);
        continue;
      }
      t.truthy(a && b, `${layer} tower ${tw}`);
      const err = maxRelError(a!, b!, 1e-5);
      t.true(err < 1e-4, `${layer} tower ${tw}: worst relative difference ${err}`);
      t.log(`${layer} tower ${tw}: ${a!.length} values, worst relative difference live vs checkpoint ${err.toExponential(2)}`);
    }
    if (layer !== 'fc8') t.notDeepEqual(Array.from(la.towers[0]!), Array.from(la.towers[1]!));
  }
  const [lp, cp] = await Promise.all([live.predictions(4), ck.predictions(4)]);
  t.deepEqual(Array.from(lp.images), Array.from(cp.images));
  t.deepEqual(Array.from(lp.labels), Array.from(cp.labels));
  t.true(maxRelError(lp.logits, cp.logits, 1e-5) < 1e-4);
}
