/** @alexnet-mp/worker: the gRPC server that owns one device and one tower, and the alexnet.v1 protocol. */
export * from './protocol.js';
export * from './rpc.js';
export * from './images.js';
export { Mailbox, Traffic, trafficTotals, mailKey, stepPhase, evalPhase, type Phase } from './exchange.js';
export { startWorker, TowerWorker, DEFAULT_MAX_BATCH, meanCrossEntropy, type WorkerOptions, type RunningWorker } from './worker.js';
export { WorkerClient, type LayerTensors } from './client.js';
export * from './auth.js';
export * from './validate.js';
export { adapterMsg, adapterFromMsg, describeDevice, describeWorkerDevice } from './adapter-report.js';
