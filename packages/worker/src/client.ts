/** A typed client of one worker's Worker service (the coordinator's side; tests and benchmarks use it too). */
import * as grpc from '@grpc/grpc-js';
import { clientStream, collectStream, unary, type CallOptions } from './rpc.js';
import { clientKeepaliveOptions } from './keepalive.js';
import { secureClient, type Security } from './auth.js';
import {
  decodeTensor,
  protocol,
  sizeLimitOptions,
  type ConfigureReply,
  type ConfigureRequest,
  type EvaluateReply,
  type EvaluateRequest,
  type HandshakeReply,
  type HandshakeRequest,
  encodeTensor,
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

  /** `security`: the credentials the worker asks for (auth.ts); none: plain gRPC. */
  constructor(readonly address: string, limitBytes: number, security?: Security) {
    this.client = secureClient(protocol().Worker, address, security, { ...sizeLimitOptions(limitBytes), ...clientKeepaliveOptions });
  }

  handshake(req: HandshakeRequest, o?: CallOptions): Promise<HandshakeReply> {
    return unary(this.client, 'Handshake', req, o);
  }

  configure(req: ConfigureRequest, o?: CallOptions): Promise<ConfigureReply> {
    return unary(this.client, 'Configure', req, o);
  }

  step(req: StepRequest, o?: CallOptions): Promise<StepReply> {
    return unary(this.client, 'Step', req, o);
  }

  evaluate(req: EvaluateRequest, o?: CallOptions): Promise<EvaluateReply> {
    return unary(this.client, 'Evaluate', req, o);
  }

  /** Ends run_id's lease on this worker (a worker without the "lease" feature answers UNIMPLEMENTED). */
  release(runId: string, o?: CallOptions): Promise<ReleaseReply> {
    return unary(this.client, 'Release', { run_id: runId }, o);
  }

  status(o?: CallOptions): Promise<StatusReply> {
    return unary(this.client, 'Status', {}, o);
  }

  /** This tower's parameters by layer, decoded. */
  async parameters(includeMomentum = false, o?: CallOptions): Promise<Map<string, LayerTensors>> {
    const msgs = await collectStream<{ include_momentum: boolean }, ParameterTensor>(this.client, 'GetParameters', { include_momentum: includeMomentum }, o);
    const out = new Map<string, LayerTensors>();
    for (const m of msgs) {
      const e = out.get(m.layer) ?? ({} as LayerTensors);
      e[m.kind] = decodeTensor(m.tensor);
      out.set(m.layer, e);
    }
    return out;
  }

  /** Replaces this tower's parameters and momentum and sets its step counter (right after Configure: a resumed run). */
  setParameters(params: ReadonlyMap<string, Required<LayerTensors>>, shapes: ReadonlyMap<string, number[]>, step: number, o?: CallOptions): Promise<SetParametersReply> {
    const msgs: ParameterTensor[] = [];
    for (const [layer, p] of params) {
      const shape = shapes.get(layer);
      if (!shape) throw new Error(`no shape for layer ${layer}`);
      msgs.push({ layer, kind: 'w', tensor: encodeTensor(shape, p.w), step });
      msgs.push({ layer, kind: 'b', tensor: encodeTensor([shape[0]!], p.b), step });
      msgs.push({ layer, kind: 'vw', tensor: encodeTensor(shape, p.vw), step });
      msgs.push({ layer, kind: 'vb', tensor: encodeTensor([shape[0]!], p.vb), step });
    }
    return clientStream(this.client, 'SetParameters', msgs, o);
  }

  close(): void {
    this.client.close();
  }
}
