/**
 * The coordinator's inspection service (alexnet.v1.Coordinator, coordinator.proto), served on its own port
 * (--inspect-port, 127.0.0.1 by default): ListWorkers, and the LiveInspector's kernels, feature maps and
 * predictions (each between two steps; see live.ts).
 */
import * as grpc from '@grpc/grpc-js';
import {
  RefusalLog,
  RpcError,
  describeError,
  redactRunId,
  listenSecurely,
  serverInterceptors,
  encodeTensor,
  formatAddress,
  maxMessageBytes,
  protocol,
  sizeLimitOptions,
  flowControlOptions,
  unaryHandler,
  type CoordinatorWorker,
  type GetKernelsReply,
  type GetPredictionsReply,
  type InspectActivationsReply,
  type InspectActivationsRequest,
  type ListWorkersReply,
} from '@alexnet-mp/worker';
import type { Coordinator } from '../coordinator.js';
import { UserError } from '../cli/errors.js';
import type { LiveInspector } from './live.js';
import { mapShape } from './layers.js';

export interface InspectServiceOptions {
  readonly inspector: LiveInspector;
  readonly coordinator: Pick<Coordinator, 'runId' | 'identity' | 'stepsCompleted' | 'clients' | 'o' | 'maxEvalBatch'>;
  /** The run's data ("synthetic", "cifar10", a folder) and the mean the workers subtract. */
  readonly data: string;
  readonly inputMean: readonly number[];
  readonly host?: string;
  /** 0: a free port. */
  readonly port: number;
  /** Where refused calls are logged (the coordinator's own credentials, `coordinator.o.security`, are asked of callers). */
  readonly log?: (line: string) => void;
}

export interface InspectService {
  readonly address: string;
  close(): Promise<void>;
}

/** User mistakes become INVALID_ARGUMENT with their message; anything else keeps its status or is INTERNAL. */
async function answer<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UserError) throw new RpcError(grpc.status.INVALID_ARGUMENT, e.message);
    if (e instanceof RpcError) throw e;
    throw new RpcError(grpc.status.UNAVAILABLE, describeError(e));
  }
}

export async function startInspectService(o: InspectServiceOptions): Promise<InspectService> {
  const c = o.coordinator;
  const spec = c.o.spec;
  // callers need the credentials the coordinator uses with its workers (mutual TLS and/or the token; auth.ts)
  const refusals = new RefusalLog(o.log ?? (() => {}));
  const server = new grpc.Server({ ...sizeLimitOptions(maxMessageBytes(spec, c.maxEvalBatch)), ...flowControlOptions, interceptors: serverInterceptors(c.o.security, refusals) });
  server.addService(protocol().Coordinator.service, {
    ListWorkers: unaryHandler<object, ListWorkersReply>(async () => {
      const workers = await Promise.all(
        c.clients.map(async (client, tower): Promise<CoordinatorWorker> => {
          try {
            return { tower, address: c.o.workers[tower]!, status: await client.status({ timeoutMs: 5000 }), error: '' };
          } catch (e) {
            return { tower, address: c.o.workers[tower]!, status: null, error: describeError(e) };
          }
        }),
      );
      // the run id with its random part hidden, as a worker's Status gives it: it is what a worker's Step asks for
      return { run_id: redactRunId(c.runId), model: c.identity, steps_done: c.stepsCompleted, workers, input_mean: [...o.inputMean], data: o.data };
    }),
    GetKernels: unaryHandler<{ layer: string }, GetKernelsReply>((req) =>
      answer(async () => {
        const k = await o.inspector.kernels(req.layer);
        return {
          step: k.step,
          layer: req.layer,
          towers: k.towers.map((t, tower) => ({ tower, weights: encodeTensor([...t.shape], t.w), biases: encodeTensor([t.b.length], t.b) })),
        };
      }),
    ),
    GetActivations: unaryHandler<InspectActivationsRequest, InspectActivationsReply>((req) =>
      answer(async () => {
        const images = new Uint8Array(req.images);
        const n = images.length / (spec.inputChannels * spec.inputSize * spec.inputSize);
        const a = await o.inspector.activations(images, req.layer);
        const [C, H, W] = mapShape(spec, req.layer).shape;
        const shape = H === 1 && W === 1 ? [C, n] : [C, n, H, W];
        return {
          step: a.step,
          layer: req.layer,
          towers: a.towers.map((x, tower) => ({
            evaluation: 0,
            tower,
            layer: req.layer,
            has_activations: x !== null,
            activations: x ? encodeTensor(shape, x) : null,
            timing: { total_ms: 0, compute_ms: 0, exchange_ms: 0, update_ms: 0, exchange_hidden_ms: 0 },
            traffic: [],
          })),
        };
      }),
    ),
    GetPredictions: unaryHandler<{ count: number }, GetPredictionsReply>((req) =>
      answer(async () => {
        const p = await o.inspector.predictions(req.count);
        const n = p.labels.length;
        return {
          step: p.step,
          images: Buffer.from(p.images.buffer, p.images.byteOffset, p.images.byteLength),
          count: n,
          size: spec.inputSize,
          labels: Array.from(p.labels),
          logits: encodeTensor([spec.classes, n], p.logits),
          class_names: [...p.classNames],
        };
      }),
    ),
  });
  const host = o.host ?? '127.0.0.1';
  let port: number;
  let close: () => Promise<void>;
  try {
    ({ port, close } = await listenSecurely(server, host, o.port, c.o.security, refusals));
  } catch (e) {
    throw new UserError(`the inspection service cannot listen on ${formatAddress({ host, port: o.port })}: ${(e as Error).message} (--inspect-port 0 picks a free port)`);
  }
  return {
    address: formatAddress({ host, port }),
    close,
  };
}
