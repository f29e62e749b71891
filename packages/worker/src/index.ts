/** @alexnet-mp/worker: the gRPC server that owns one device and one tower, and the alexnet.v1 protocol. */
export * from './protocol.js';
export * from './rpc.js';
export * from './images.js';
export { Mailbox, Traffic, trafficTotals, mailKey, stepPhase, evalPhase, type Phase } from './exchange.js';
export { TowerWorker } from './worker.js';
export { DEFAULT_MAX_BATCH, DEFAULT_LEASE_MS, DEVICE_LOST_EXIT_CODE, type WorkerOptions } from './worker-options.js';
export { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './connection-limits.js';
export { redactRunId } from './run.js';
export { ExchangeStream } from './exchange-stream.js';
export { FLOW_CONTROL_WINDOW_BYTES, flowControlOptions } from './flow-control.js';
export { startWorker, type RunningWorker } from './server.js';
export { meanCrossEntropy } from './evaluation.js';
export { WorkerClient, type LayerTensors } from './client.js';
export { DEFAULT_CHUNK_BYTES, ChunkError, ParameterAssembly, activationChunks, assembleParameters, tensorChunks, type TensorChunk } from './chunks.js';
export * from './auth.js';
export * from './validate.js';
export { adapterMsg, adapterFromMsg, describeDevice, describeThreads, describeWorkerDevice } from './adapter-report.js';
export { crossingWaits, readCrossingTrace, type CrossingWait, type StepTrace, type TowerWaits } from './crossing-trace.js';
