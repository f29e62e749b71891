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
import { canonicalJson, crossingSizes, modelHash, planModel, towerParamLayers, type ModelSpec } from '@alexnet-mp/core';

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
 *   PeerHello.features; StepTiming.exchange_hidden_ms.
 */
export const FEATURES = ['evaluate', 'set-parameters', 'activations', 'no-bias-decay', 'parameter-chunks', 'activation-chunks', 'lease', 'exchange-stream'] as const;
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

// ---- messages (field names as in the .proto files) ----

export interface ModelIdentity {
  protocol_version: number;
  preset: string;
  model_hash: string;
}

export interface Tensor {
  shape: number[];
  data: Buffer;
}

export interface SgdHyperMsg {
  lr: number;
  momentum: number;
  weight_decay: number;
  /** Weight decay on the weights only (absent or false: on the biases too, v1's first rule). */
  no_bias_decay?: boolean;
}

export interface CrossingTraffic {
  point: string;
  forward_sent_bytes: number;
  forward_received_bytes: number;
  backward_sent_bytes: number;
  backward_received_bytes: number;
  messages_sent: number;
  messages_received: number;
}

export interface StepTiming {
  total_ms: number;
  compute_ms: number;
  exchange_ms: number;
  update_ms: number;
  /** Exchange time hidden behind compute (0 from older workers: proto-loader's default). */
  exchange_hidden_ms: number;
}

export interface HandshakeRequest {
  model: ModelIdentity;
  tower: number;
  peer_address: string;
  run_id: string;
  /** Take the worker even if another run holds its lease. */
  take_over?: boolean;
}

export interface ReleaseRequest {
  run_id: string;
}

export interface ReleaseReply {
  released: boolean;
}

/** The WebGPU adapter a worker's device runs on (worker.proto's WebGPUAdapter). */
export interface WebGPUAdapterMsg {
  index: number;
  name: string;
  backend: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  software: boolean;
  /** "" unless the adapter was told apart from an identical GPU by its PCI address. */
  pci_address: string;
}

export interface HandshakeReply {
  model: ModelIdentity;
  tower: number;
  backend: string;
  device: number;
  peer_address: string;
  max_batch: number;
  hostname: string;
  pid: number;
  features: string[];
  /** Null on webasm and cpu, and from workers older than the field (proto-loader leaves an unset message null). */
  adapter?: WebGPUAdapterMsg | null;
}

export interface ConfigureRequest {
  run_id: string;
  batch: number;
  seed: number;
  peer_address: string;
  /** Per-channel mean in pixel levels subtracted from every image; empty: 128 each (images.ts). */
  input_mean?: number[];
}

export interface ConfigureReply {
  tower: number;
  parameters: number;
  peer_address: string;
  crossings: { point: string; floats: number }[];
}

export interface StepRequest {
  run_id: string;
  step: number;
  images: Uint8Array;
  labels: number[];
  hyper: SgdHyperMsg;
}

export interface StepReply {
  step: number;
  tower: number;
  has_loss: boolean;
  loss: number;
  correct: number;
  correct_top5: number;
  batch: number;
  timing: StepTiming;
  traffic: CrossingTraffic[];
}

export interface EvaluateRequest {
  run_id: string;
  evaluation: number;
  step: number;
  images: Uint8Array;
  labels: number[];
}

export interface EvaluateReply {
  evaluation: number;
  tower: number;
  batch: number;
  has_loss: boolean;
  loss: number;
  correct: number;
  correct_top5: number;
  /** Tower 0: [classes, N]; tower 1: null (proto-loader leaves an unset message field null). */
  logits: Tensor | null;
  timing: StepTiming;
  traffic: CrossingTraffic[];
}

export type WorkerState = 'IDLE' | 'READY' | 'STEPPING' | 'FAILED' | 'EVALUATING';

export interface StatusReply {
  model: ModelIdentity;
  tower: number;
  backend: string;
  device: number;
  state: WorkerState;
  run_id: string;
  batch: number;
  steps_done: number;
  last_error: string;
  peer_address: string;
  last_step_traffic: CrossingTraffic[];
  run_traffic: CrossingTraffic[];
  last_step_timing: StepTiming;
  uptime_s: number;
  pid: number;
  evaluations_done: number;
  eval_traffic: CrossingTraffic[];
  /** As in HandshakeReply. */
  adapter?: WebGPUAdapterMsg | null;
}

export interface ParameterTensor {
  layer: string;
  kind: 'w' | 'b' | 'vw' | 'vb';
  /** The whole tensor, or rows row_offset.. of it (a chunk: chunks.ts). */
  tensor: Tensor;
  step: number;
  /** The chunk's first row; 0 for a whole tensor (and from older workers). */
  row_offset?: number;
  /** The whole tensor's first dimension; 0 from older workers (the message is the whole tensor). */
  total_rows?: number;
}

export interface GetParametersRequest {
  include_momentum: boolean;
  /** Only these layers; empty or absent: all. */
  layers?: string[];
  /** The most tensor data in one message; 0 or absent: 1 MiB (chunks.ts). */
  max_chunk_bytes?: number;
}

export interface GetActivationsRequest {
  run_id: string;
  evaluation: number;
  step: number;
  images: Uint8Array;
  layer: string;
  /** StreamActivations: the most tensor data in one reply message; 0 or absent: 1 MiB. */
  max_chunk_bytes?: number;
}

export interface GetActivationsReply {
  evaluation: number;
  tower: number;
  layer: string;
  has_activations: boolean;
  /** [C, N, H, W] or [units, N] (activationShape), or rows of it from StreamActivations; null when has_activations is false. */
  activations: Tensor | null;
  /** Null in StreamActivations' messages after the first. */
  timing: StepTiming | null;
  traffic: CrossingTraffic[];
  /** StreamActivations: the first row of `activations` in the whole output, and the output's rows; 0 from GetActivations. */
  row_offset?: number;
  total_rows?: number;
}

// ---- the Coordinator service (coordinator.proto)

export interface CoordinatorWorker {
  tower: number;
  address: string;
  status: StatusReply | null;
  error: string;
}

export interface ListWorkersReply {
  run_id: string;
  model: ModelIdentity;
  steps_done: number;
  workers: CoordinatorWorker[];
  input_mean: number[];
  data: string;
}

export interface TowerParameters {
  tower: number;
  weights: Tensor;
  biases: Tensor;
}

export interface GetKernelsReply {
  step: number;
  layer: string;
  towers: TowerParameters[];
}

export interface InspectActivationsRequest {
  layer: string;
  images: Uint8Array;
}

export interface InspectActivationsReply {
  step: number;
  layer: string;
  towers: GetActivationsReply[];
}

export interface GetPredictionsReply {
  step: number;
  images: Buffer;
  count: number;
  size: number;
  labels: number[];
  logits: Tensor | null;
  class_names: string[];
}

export interface SetParametersReply {
  tower: number;
  step: number;
  tensors: number;
}

export interface PeerHello {
  model: ModelIdentity;
  tower: number;
  run_id: string;
  /** Reply only: the callee's features (empty from older workers). */
  features?: string[];
}

export type Direction = 'FORWARD' | 'BACKWARD';

export interface ExchangeRequest {
  run_id: string;
  step: number;
  point: string;
  direction: Direction;
  from_tower: number;
  tensor: Tensor;
}

/** Peer.Stream's answer to one ExchangeRequest: code 0 (taken) or the status Exchange would have failed with. */
export interface ExchangeAck {
  step: number;
  point: string;
  direction: Direction;
  code: number;
  message: string;
}

export interface EvalExchangeRequest {
  run_id: string;
  evaluation: number;
  point: string;
  from_tower: number;
  batch: number;
  tensor: Tensor;
}

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
  const plans = planModel(spec);
  const p = plans.find((q) => q.layer.name === point);
  if (!p) throw new Error(`no layer ${point} in preset ${spec.name}`);
  return activationShape(p.outShape, batch);
}

// ---- addresses ----

export interface Address {
  host: string;
  port: number;
}

/** Parses HOST:PORT (IPv6 as [addr]:port); throws with a message fit for a user. */
export function parseAddress(s: string, what = 'address'): Address {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`${what} "${s}" is not HOST:PORT`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${what} "${s}": port must be 0..65535`);
  return { host: m[1] ?? m[2]!, port };
}

export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
