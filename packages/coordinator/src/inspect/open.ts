/** Starts a coordinator's inspection service (`alexnet coordinator --inspect-port`): a LiveInspector over the run, served with gRPC. */
import type { ModelSpec } from '@alexnet-mp/core';
import type { Coordinator } from '../coordinator.js';
import type { TrainingData } from '../training-data.js';
import { UserError } from '../cli/errors.js';
import { LiveInspector, type HeldOutExamples } from './live.js';
import { startInspectService, type InspectService } from './service.js';

export interface OpenInspectOptions {
  readonly coordinator: Coordinator;
  readonly spec: ModelSpec;
  readonly data: Pick<TrainingData, 'heldOut' | 'classes' | 'source'>;
  /** `--data` as given: "synthetic", "cifar10" or a folder. */
  readonly dataName: string;
  readonly host: string;
  readonly port: number;
  readonly info: (line: string) => void;
  /** What `alexnet inspect` needs to be let in, as options (`--token-file F`, `--tls DIR`) or a note; empty without authentication. */
  readonly credentials?: string;
}

export async function openInspectService(o: OpenInspectOptions): Promise<InspectService> {
  const heldOut: HeldOutExamples = {
    classNames: o.data.classes ?? [],
    examples: async (count) => {
      try {
        for await (const b of o.data.heldOut(count, 1, 'centre').batches()) return b;
      } catch (e) {
        throw new UserError(`no held-out images: ${(e as Error).message}`);
      }
      throw new UserError('the held-out split is empty');
    },
  };
  const inspector = new LiveInspector(o.coordinator, o.spec, heldOut);
  const service = await startInspectService({
    inspector,
    coordinator: o.coordinator,
    data: o.dataName,
    inputMean: o.data.source.inputMean ?? [],
    host: o.host,
    port: o.port,
    log: o.info,
  });
  o.info(`inspection service (alexnet.v1.Coordinator) at ${service.address}: alexnet inspect kernels --coordinator ${service.address}${o.credentials ? ` ${o.credentials}` : ''}`);
  return service;
}
