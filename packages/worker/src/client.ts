/** A typed client of one worker's Worker service (the coordinator's side; tests and benchmarks use it too). */
import * as grpc from '@grpc/grpc-js';
import { clientStream, collectStream, unary, type CallOptions } from './rpc.js';
import { clientChannelOptions } from './channel-options.js';
import { secureClient, type Security } from './auth.js';
import { DEFAULT_CHUNK_BYTES, assembleParameters, tensorChunks } from './chunks.js';
import {
  protocol,
  type ConfigureReply,
  type ConfigureRequest,
  type EvaluateReply,
  type EvaluateRequest,
  type HandshakeReply,
  type HandshakeRequest,
  type GetParametersRequest,
  type ParameterTensor,
  type ReleaseReply,
  type SetParametersReply,
  type StatusReply,
  type StepReply,
  type StepRequest,
} from './protocol.js';

export interface LayerTensors {
  w: Float32Array;
  b: Float32Array;
  vw?: Float32Array;
  vb?: Float32Array;
}

export class WorkerClient {
  readonly client: grpc.Client;
  /** HandshakeReply.features of this client's last handshake; null before one. */
  private features: readonly string[] | null = null;
  /** The run of this client's last Configure (or Handshake): GetParameters and SetParameters name it. */
  private runId = '';

  /** `security`: the credentials the worker asks for (auth.ts); none: plain gRPC. */
  constructor(readonly address: string, limitBytes: number, security?: Security) {
    this.client = secureClient(protocol().Worker, address, security, clientChannelOptions(limitBytes));
  }

  handshake(req: HandshakeRequest, o?: CallOptions): Promise<HandshakeReply> {
    return unary<HandshakeRequest, HandshakeReply>(this.client, 'Handshake', req, o).then((r) => {
      this.features = r.features;
      this.runId = req.run_id;
      return r;
    });
  }

  configure(req: ConfigureRequest, o?: CallOptions): Promise<ConfigureReply> {
    return unary<ConfigureRequest, ConfigureReply>(this.client, 'Configure', req, o).then((r) => {
      this.runId = req.run_id;
      return r;
    });
  }

  step(req: StepRequest, o?: CallOptions): Promise<StepReply> {
    return unary(this.client, 'Step', req, o);
  }

  evaluate(req: EvaluateRequest, o?: CallOptions): Promise<EvaluateReply> {
    return unary(this.client, 'Evaluate', req, o);
  }

  /** Ends run_id's lease on this worker; a worker whose handshake did not list "lease" holds none and is not called. */
  async release(runId: string, o?: CallOptions): Promise<ReleaseReply> {
    if (this.features && !this.features.includes('lease')) return { released: false };
    return unary(this.client, 'Release', { run_id: runId }, o);
  }

  status(o?: CallOptions): Promise<StatusReply> {
    return unary(this.client, 'Status', {}, o);
  }

  /**
   * This tower's parameters by layer, decoded (chunks put back together; `maxChunkBytes`:
   * GetParametersRequest.max_chunk_bytes), asked for as the run this client configured unless `runId` says another.
   */
  async parameters(includeMomentum = false, o: CallOptions & { maxChunkBytes?: number; runId?: string } = {}): Promise<Map<string, LayerTensors>> {
    const req: GetParametersRequest = { include_momentum: includeMomentum, max_chunk_bytes: o.maxChunkBytes ?? 0, run_id: o.runId ?? this.runId };
    const msgs = await collectStream<GetParametersRequest, ParameterTensor>(this.client, 'GetParameters', req, o);
    const out = new Map<string, LayerTensors>();
    for (const [layer, kinds] of assembleParameters(msgs)) out.set(layer, Object.fromEntries(kinds) as unknown as LayerTensors);
    return out;
  }

  /**
   * Replaces this tower's parameters and momentum and sets its step counter (right after Configure: a resumed run).
   * Tensors over `chunkBytes` (1 MiB) go in chunks of rows to a worker that listed "parameter-chunks" at this
   * client's handshake (or when there was none); to an older worker, whole. Each message names the run this
   * client configured unless `runId` says another.
   */
  setParameters(params: ReadonlyMap<string, Required<LayerTensors>>, shapes: ReadonlyMap<string, number[]>, step: number, o: CallOptions & { chunkBytes?: number; runId?: string } = {}): Promise<SetParametersReply> {
    for (const layer of params.keys()) if (!shapes.has(layer)) throw new Error(`no shape for layer ${layer}`);
    const run_id = o.runId ?? this.runId;
    const chunkBytes = this.features && !this.features.includes('parameter-chunks') ? Infinity : (o.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    function* messages(): Generator<ParameterTensor> {
      for (const [layer, p] of params) {
        const shape = shapes.get(layer)!;
        for (const kind of ['w', 'b', 'vw', 'vb'] as const) {
          for (const c of tensorChunks(kind === 'w' || kind === 'vw' ? shape : [shape[0]!], p[kind], chunkBytes)) yield { layer, kind, step, run_id, ...c };
        }
      }
    }
    return clientStream(this.client, 'SetParameters', messages(), o);
  }

  close(): void {
    this.client.close();
  }
}
