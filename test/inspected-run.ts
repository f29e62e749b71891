/**
 * For the inspection tests: a coordinator that trained `steps` steps on two running workers (tiny preset,
 * synthetic data, a checkpoint of the last step in `runDir`) and its inspection service, as `alexnet
 * coordinator --inspect-port` serves it; both closed through `register` (a test's teardown, or a list).
 */
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource, checkpointDir, heldOutSet } from '@alexnet-mp/coordinator';
import { LiveInspector } from '../packages/coordinator/src/inspect/live.js';
import { startInspectService, type InspectService } from '../packages/coordinator/src/inspect/service.js';

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
