/** @alexnet-mp/coordinator: the command line, the coordinator of a two-worker run, batch sources, and the local launcher. */
export { UserError, isUserError } from './cli/errors.js';
export { checkThreads, parseMicroBatches } from './cli/options.js';
export { Coordinator, WorkerFailure, newRunId, type CoordinatorOptions, type StepMetrics, type WorkerStepMetrics } from './coordinator.js';
export { SyntheticSource, createSource, sourceNames, type BatchSource, type U8Batch, type SourceName } from './batch-source.js';
export { MetricsLog, summarise } from './metrics-log.js';
export { readRunEvents, stepTimesMs } from './run-summary.js';
export { SourceEvalSet, heldOutSet, summariseEval, HELD_OUT_SEED_TAG, type EvalSet, type EvalSummary, type EvalMetrics, type EvalResult, type EvalBatchResult } from './evaluation.js';
export { launch, alexnetBin, type LaunchOptions, type LaunchResult } from './launch.js';
export { MALLOC_TUNABLES, mallocTuned, withMallocTuning, mallocDescription } from './malloc-tuning.js';
export { openTrainingData, SYNTHETIC_EPOCH_IMAGES, type TrainingData, type OpenDataOptions } from './training-data.js';
export { loadResume, readCheckpointHeader, latestOf, checkpointDir, type Resumed, type SavedRun } from './resume.js';
export { Progress, progressBarWanted, type ProgressOptions } from './progress.js';
export { makeCerts, identityFiles, DEFAULT_CERT_HOSTS, DEFAULT_CERT_NAMES, type CertsOptions, type CertsResult } from './certs.js';
export { colocatedThreads, cpuWorkerArgs, planCpus, planDevices, threadsLine, workerNodeFlags, type CpuHost } from './launch-devices.js';
export { allowedCpus, cpuHalves, formatCpuList, pinningRefused, pinningUnavailable } from './cpu-affinity.js';
