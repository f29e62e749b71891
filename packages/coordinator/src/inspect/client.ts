/** A typed client of a coordinator's inspection service (alexnet.v1.Coordinator, coordinator.proto). */
import * as grpc from '@grpc/grpc-js';
import {
  decodeTensor,
  describeError,
  isServiceError,
  protocol,
  secureClient,
  sizeLimitOptions,
  flowControlOptions,
  unary,
  type GetKernelsReply,
  type GetPredictionsReply,
  type InspectActivationsReply,
  type InspectActivationsRequest,
  type ListWorkersReply,
  type Security,
  certificateFailure,
  connectionFailure,
  failFastOnCertificates,
  unreachableHint,
} from '@alexnet-mp/worker';
import { UserError } from '../cli/errors.js';
import { listening } from '../listening.js';
import type { ActivationsAt, KernelsAt, LayerKernels, PredictionsAt } from './live.js';

/** Replies carry a layer's kernels or maps, or a few images: far below this (paper conv3: 1.8 MB a tower). */
const CLIENT_LIMIT_BYTES = 256 * 1024 * 1024;

export class InspectClient {
  private readonly client: grpc.Client;

  /** `security`: the coordinator's credentials (its --tls or token), when it asks for them. */
  constructor(readonly address: string, private readonly security?: Security) {
    this.client = secureClient(protocol().Coordinator, address, security, { ...sizeLimitOptions(CLIENT_LIMIT_BYTES), ...flowControlOptions });
  }

  /** A service error as one line for the user (a refusal's message as it is). */
  private async explain(failure: unknown): Promise<Error> {
    let e = failure;
    if (isServiceError(e)) {
      if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
        // waiting for the channel hides why it never connected: one quick call without waiting says (refused, TLS, ...)
        e = await connectionFailure(e, () => this.quickListWorkers());
        if (!isServiceError(e)) return e as Error;
        // TLS on both sides, the certificates not of one CA (or not naming the host): no retry makes it work
        if (e.code === grpc.status.UNAVAILABLE && certificateFailure(e.details)) {
          return new UserError(`the TLS handshake with the coordinator at ${this.address} failed on a certificate (${describeError(e)}): ${unreachableHint(e.details, this.security, this.address, 'coordinator')}`);
        }
        // something listening there that does not answer gRPC as this client speaks it: TLS against plain, or another service
        if (await listening(this.address)) {
          const tls = this.security?.tls ? 'it may not serve TLS (then leave --tls out)' : 'it may serve TLS: give --tls DIR, the coordinator\'s certificates folder';
          return new UserError(`something listens at ${this.address} but does not answer as an inspection service (${describeError(e)}): ${tls}; or it is another port of the run (the dashboard's, a worker's): alexnet launch prints the inspection service's address`);
        }
        return new UserError(`no coordinator answered at ${this.address} (${describeError(e)}): start it with --inspect-port (alexnet launch prints the address)`);
      }
      if (e.code === grpc.status.UNAUTHENTICATED) return new UserError(`the coordinator at ${this.address} refused us: ${e.details} (alexnet launch says which --token-file to give)`);
      if (e.code === grpc.status.UNIMPLEMENTED) return new UserError(`${this.address} does not serve alexnet.v1.Coordinator (${describeError(e)})`);
      return new UserError(`the coordinator at ${this.address}: ${e.details || e.message}`);
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  /** ListWorkers without waiting for the channel: what the connection meets (a certificate refused, ...). */
  private quickListWorkers(): Promise<ListWorkersReply> {
    return unary(this.client, 'ListWorkers', {}, { timeoutMs: 1000 });
  }

  private async call<Req, Res>(method: string, req: Req, timeoutMs?: number): Promise<Res> {
    try {
      const call = unary<Req, Res>(this.client, method, req, { timeoutMs, waitForReady: timeoutMs !== undefined });
      // waiting for the coordinator to come up: a connection refused for its certificates is said at once
      return await (timeoutMs === undefined ? call : failFastOnCertificates(call, () => this.quickListWorkers()));
    } catch (e) {
      throw await this.explain(e);
    }
  }

  listWorkers(timeoutMs?: number): Promise<ListWorkersReply> {
    return this.call('ListWorkers', {}, timeoutMs);
  }

  async kernels(layer: string, shape: LayerKernels['shape']): Promise<KernelsAt> {
    const r = await this.call<{ layer: string }, GetKernelsReply>('GetKernels', { layer });
    const towers = [0, 1].map((t) => {
      const p = r.towers.find((x) => x.tower === t);
      if (!p) throw new Error(`the coordinator sent no ${layer} kernels of tower ${t}`);
      return { w: decodeTensor(p.weights, shape), b: decodeTensor(p.biases), shape };
    }) as [LayerKernels, LayerKernels];
    return { step: r.step, towers };
  }

  async activations(images: Uint8Array, layer: string): Promise<ActivationsAt> {
    const r = await this.call<InspectActivationsRequest, InspectActivationsReply>('GetActivations', { layer, images });
    const towers = [0, 1].map((t) => {
      const a = r.towers.find((x) => x.tower === t);
      return a?.has_activations && a.activations ? decodeTensor(a.activations) : null;
    }) as [Float32Array | null, Float32Array | null];
    return { step: r.step, towers };
  }

  async predictions(count: number): Promise<PredictionsAt> {
    const r = await this.call<{ count: number }, GetPredictionsReply>('GetPredictions', { count });
    if (!r.logits) throw new Error('the coordinator sent no logits');
    return { step: r.step, images: new Uint8Array(r.images), labels: Uint32Array.from(r.labels), logits: decodeTensor(r.logits), classNames: r.class_names };
  }

  close(): void {
    this.client.close();
  }
}

