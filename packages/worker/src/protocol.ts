/**
 * The alexnet.v1 wire protocol as TypeScript: loading proto/alexnet/v1/*.proto
 * with @grpc/proto-loader, hand-written types of the messages (as the loader
 * gives them: keepCase, longs as Number, enums as String, defaults on), the
 * model identity both ends compare, message size limits from the preset, and
 * tensors as little-endian float32 bytes.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { canonicalJson, crossingSizes, modelHash, planModel, towerParamLayers, type LayerPlan, type ModelSpec } from '@alexnet-mp/core';

/** The protocol this build speaks; alexnet.v1 on the wire. */
export const PROTOCOL_VERSION = 1;

/**
 * Calls added within alexnet.v1 that this build serves, listed in
 * HandshakeReply.features (older workers list none):
 * - "evaluate": Worker.Evaluate and Peer.EvalExchange;
 * - "set-parameters": Worker.SetParameters (resuming from a checkpoint);
 * - "activations": Worker.GetActivations (inspection) and GetParametersRequest.layers;
 * - "no-bias-decay": SgdHyper.no_bias_decay (an older worker decays the biases whatever it is sent);
 * - "parameter-chunks": ParameterTensor.row_offset/total_rows and GetParametersRequest.max_chunk_bytes
 *   (tensors over the chunk size travel in chunks of rows, both ways);
 * - "activation-chunks": Worker.StreamActivations (GetActivations' reply in chunks of rows);
 * - "lease": Worker.Release and HandshakeRequest.take_over;
 * - "exchange-stream": Peer.Stream (a run's crossing tensors on one stream, each acknowledged) and
 *   PeerHello.features; StepTiming.exchange_hidden_ms;
 * - "micro-batches": StepRequest.micro_batches, ConfigureRequest.micro_batches, ExchangeRequest.micro_batch
 *   and micro_batches, ExchangeAck.micro_batch (a step cut into micro-batches whose crossings overlap the compute);
 * - "queued-steps": Worker.Step for the step after the one running is held until that one ends (not refused as
 *   busy), and Peer tensors of the step after the current one are taken (the peer may start it first);
 * - "parameters-run-id": GetParametersRequest.run_id and ParameterTensor.run_id (SetParameters) are checked
 *   against the configured run (an older worker sends its parameters to anyone and takes them from anyone);
 * - "drain": StepReply.draining (the worker is asked to stop and waits for a checkpoint of its parameters).
 */
export const FEATURES = ['evaluate', 'set-parameters', 'activations', 'no-bias-decay', 'parameter-chunks', 'activation-chunks', 'lease', 'exchange-stream', 'micro-batches', 'queued-steps', 'parameters-run-id', 'drain'] as const;
export type Feature = (typeof FEATURES)[number];

export const protoRoot = fileURLToPath(new URL('../../../proto', import.meta.url));
export const protoFiles = ['alexnet/v1/common.proto', 'alexnet/v1/worker.proto', 'alexnet/v1/peer.proto', 'alexnet/v1/coordinator.proto'];

export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs: [protoRoot],
};

interface V1Package {
  Worker: grpc.ServiceClientConstructor;
  Peer: grpc.ServiceClientConstructor;
  /** The coordinator's inspection service (coordinator.proto). */
  Coordinator: grpc.ServiceClientConstructor;
}

let loaded: V1Package | null = null;

/** The alexnet.v1 services (loaded once per process). */
export function protocol(): V1Package {
  if (!loaded) {
    const def = protoLoader.loadSync(protoFiles, loaderOptions);
    const pkg = grpc.loadPackageDefinition(def) as unknown as { alexnet: { v1: V1Package } };
    loaded = pkg.alexnet.v1;
  }
  return loaded;
}

export * from './messages.js';
import type { ModelIdentity, Tensor } from './messages.js';

// ---- identity ----

// the model hash (sha256 of the preset's canonical JSON) is core's, shared with checkpoints
export { canonicalJson, modelHash };

export function modelIdentity(spec: ModelSpec, protocolVersion = PROTOCOL_VERSION): ModelIdentity {
  return { protocol_version: protocolVersion, preset: spec.name, model_hash: modelHash(spec) };
}

/** Every way two identities differ, as phrases ("preset differs (...)"); empty when they agree. */
export function identityDifferences(mine: ModelIdentity, theirs: ModelIdentity, me: string, them: string): string[] {
  const out: string[] = [];
  if (mine.protocol_version !== theirs.protocol_version) {
    out.push(`protocol version differs (${me} speaks alexnet.v${mine.protocol_version}, ${them} alexnet.v${theirs.protocol_version})`);
  }
  if (mine.preset !== theirs.preset) out.push(`preset differs (${me}: ${mine.preset}, ${them}: ${theirs.preset})`);
  else if (mine.model_hash !== theirs.model_hash) {
    out.push(`model hash differs for preset ${mine.preset} (${me}: ${mine.model_hash.slice(0, 12)}, ${them}: ${theirs.model_hash.slice(0, 12)}): the two builds define the model differently`);
  }
  return out;
}

// ---- message size limits ----

/** Room for everything in a message that is not its largest tensor. */
const MESSAGE_SLACK = 1 << 20;
/** gRPC's largest message (a signed 32-bit length): a batch whose messages pass it cannot run. */
export const MAX_GRPC_MESSAGE_BYTES = 2 ** 31 - 1;

/**
 * The largest message of a run of this preset with batches up to maxBatch:
 * a Step or Evaluate request (uint8 images and labels), a crossing tensor,
 * an Evaluate reply's logits, or one whole parameter tensor (this build
 * sends tensors over 1 MiB in chunks, chunks.ts; older ones send them
 * whole), plus slack.
 */
export function maxMessageBytes(spec: ModelSpec, maxBatch: number): number {
  const images = spec.inputChannels * spec.inputSize * spec.inputSize * maxBatch + 5 * maxBatch;
  const crossing = Math.max(...crossingSizes(spec, maxBatch).map((c) => c.floats), spec.classes * maxBatch) * 4;
  let param = 0;
  for (const t of [0, 1] as const) {
    for (const l of towerParamLayers(spec, t)) param = Math.max(param, l.shape.reduce((a, b) => a * b, 1) * 4);
  }
  return Math.max(images, crossing, param) + MESSAGE_SLACK;
}

/** gRPC channel/server options with both size limits set to `bytes`. */
export function sizeLimitOptions(bytes: number): grpc.ChannelOptions {
  return { 'grpc.max_send_message_length': bytes, 'grpc.max_receive_message_length': bytes };
}

// ---- tensors ----

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A tensor message: the floats as little-endian bytes (no copy on little-endian hosts). */
export function encodeTensor(shape: number[], x: Float32Array): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== x.length) throw new Error(`tensor of shape [${shape}] needs ${n} floats, got ${x.length}`);
  if (littleEndian) return { shape, data: Buffer.from(x.buffer, x.byteOffset, x.byteLength) };
  const data = Buffer.alloc(x.byteLength);
  for (let i = 0; i < x.length; i++) data.writeFloatLE(x[i]!, i * 4);
  return { shape, data };
}

/**
 * The floats of a tensor message (a copy, aligned), checked against the expected shape when given. With
 * `view`, on a little-endian host whose bytes lie 4-aligned in the received message, the floats are a view of
 * them, no copy (for a reader that only reads them: the crossing tensors).
 */
export function decodeTensor(t: Tensor, expectShape?: readonly number[], view = false): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (expectShape && (expectShape.length !== t.shape.length || expectShape.some((d, i) => d !== t.shape[i]))) {
    throw new Error(`tensor shape [${t.shape}] where [${expectShape}] was expected`);
  }
  if (t.data.byteLength !== n * 4) throw new Error(`tensor of shape [${t.shape}] has ${t.data.byteLength} bytes, expected ${n * 4}`);
  if (view && littleEndian && t.data.byteOffset % 4 === 0) return new Float32Array(t.data.buffer, t.data.byteOffset, n);
  const out = new Float32Array(n);
  if (littleEndian) new Uint8Array(out.buffer).set(t.data);
  else for (let i = 0; i < n; i++) out[i] = t.data.readFloatLE(i * 4);
  return out;
}

/**
 * The wire shape of one tower's activations of a layer whose output (on one tower) is C x H x W, for N images
 * (proto/README.md, "Tensor shapes"): [C, N, H, W], and [C, N] when H = W = 1 (every fc layer, with C its
 * units, and a conv or pool layer whose output is 1 x 1, as the tiny preset's pool5).
 */
export function activationShape(out: { c: number; h: number; w: number }, n: number): number[] {
  return out.h === 1 && out.w === 1 ? [out.c, n] : [out.c, n, out.h, out.w];
}

/** A received activation's shape as the receiver compares it: [C, N, 1, 1] is taken as [C, N] (the same floats in the same order). */
export function squeezeUnitSpatial(shape: readonly number[]): number[] {
  return shape.length === 4 && shape[2] === 1 && shape[3] === 1 ? [shape[0]!, shape[1]!] : [...shape];
}

/** Shape of one tower's output at crossing point `point` (a layer name) for `batch` images: what crosses there. */
export function crossingShape(spec: ModelSpec, point: string, batch: number): number[] {
  // asked several times a crossing: the model's plan is made once per spec
  let outShapes = layerOutShapes.get(spec);
  if (!outShapes) {
    outShapes = new Map(planModel(spec).map((q) => [q.layer.name, q.outShape]));
    layerOutShapes.set(spec, outShapes);
  }
  const out = outShapes.get(point);
  if (!out) throw new Error(`no layer ${point} in preset ${spec.name}`);
  return activationShape(out, batch);
}

const layerOutShapes = new WeakMap<ModelSpec, Map<string, LayerPlan['outShape']>>();

// ---- addresses ----

export interface Address {
  host: string;
  port: number;
}

/** Parses HOST:PORT (IPv6 as [addr]:port), an address to connect to (port 1..65535); throws with a message fit for a user. */
export function parseAddress(s: string, what = 'address'): Address {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`${what} "${s}" is not HOST:PORT`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${what} "${s}": port must be 1..65535`);
  return { host: m[1] ?? m[2]!, port };
}

export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
