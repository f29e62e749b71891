/** The alexnet.v1 messages as TypeScript types (field names as in the .proto files; proto-loader keeps them). */

export interface ModelIdentity {
  protocol_version: number;
  preset: string;
  model_hash: string;
}

export interface Tensor {
  shape: number[];
  data: Buffer;
  /**
   * Zeros a sender may put before `data` so that it lands 4-byte aligned at the receiver (aligned-exchange.ts);
   * ignored. A decoded Tensor has it (empty where the sender wrote none: the loader fills defaults).
   */
  padding?: Buffer;
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
  /** What the worker checks of its callers ("none", "token", "tls", "tls+token"); "" from older workers. */
  authentication?: string;
  /** A random id of the worker process ("" from older workers): ConfigureReply.peer_instance is compared with it. */
  instance?: string;
}

export interface ConfigureRequest {
  run_id: string;
  batch: number;
  seed: number;
  peer_address: string;
  /** Per-channel mean in pixel levels subtracted from every image; empty: 128 each (images.ts). */
  input_mean?: number[];
  /** The steps' micro-batches: 0 (or absent) chosen per step by the coordinator, N >= 1 always N. */
  micro_batches?: number;
}

export interface ConfigureReply {
  tower: number;
  parameters: number;
  peer_address: string;
  crossings: { point: string; floats: number }[];
  /** The instance of the peer that answered this worker's Hello ("" from older workers or peers). */
  peer_instance?: string;
}

export interface StepRequest {
  run_id: string;
  step: number;
  images: Uint8Array;
  labels: number[];
  hyper: SgdHyperMsg;
  /** Micro-batches of this step (pipeline.ts); 0 (an older coordinator) or 1: the whole batch at once. */
  micro_batches?: number;
  /** Reply with each layer's norms after the update (StepReply.layer_norms). */
  layer_norms?: boolean;
}

/** A layer's L2 norms on one tower after a step: weights, the step's change of them (the momentum v), biases. */
export interface LayerNorms {
  layer: string;
  weight_norm: number;
  update_norm: number;
  bias_norm: number;
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
  /** The worker process's resident memory after the step, bytes (0 or absent from older workers). */
  rss_bytes?: number;
  /** With StepRequest.layer_norms: each layer with parameters on this tower (absent from older workers). */
  layer_norms?: LayerNorms[];
  /** The worker is asked to stop and waits for a checkpoint of its parameters (feature "drain"; absent from older workers). */
  draining?: boolean;
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
  /** The worker process's resident memory now, bytes (0 or absent from older workers). */
  rss_bytes?: number;
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
  /** SetParameters: the configured run (every message); empty from GetParameters. */
  run_id?: string;
}

export interface GetParametersRequest {
  include_momentum: boolean;
  /** Only these layers; empty or absent: all. */
  layers?: string[];
  /** The most tensor data in one message; 0 or absent: 1 MiB (chunks.ts). */
  max_chunk_bytes?: number;
  /** The configured run: parameters go only to it. */
  run_id: string;
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
  /** Reply only: the callee's instance ("" from older workers). */
  instance?: string;
}

export type Direction = 'FORWARD' | 'BACKWARD';

export interface ExchangeRequest {
  run_id: string;
  step: number;
  point: string;
  direction: Direction;
  from_tower: number;
  tensor: Tensor;
  /** Micro-batch `micro_batch` of `micro_batches` (both 0 from older senders: the whole batch). */
  micro_batch?: number;
  micro_batches?: number;
}

/** Peer.Stream's answer to one ExchangeRequest: code 0 (taken) or the status Exchange would have failed with. */
export interface ExchangeAck {
  step: number;
  point: string;
  direction: Direction;
  code: number;
  message: string;
  /** The request's micro_batch, echoed (0 from older workers). */
  micro_batch?: number;
}

export interface EvalExchangeRequest {
  run_id: string;
  evaluation: number;
  point: string;
  from_tower: number;
  batch: number;
  tensor: Tensor;
}

