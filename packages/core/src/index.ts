/** @alexnet-mp/core: devices, kernels, the model as data, the tower runtime and the one-process trainer. */
export * from './device.js';
export * from './random.js';
export * from './model/spec.js';
export * from './model/presets.js';
export * from './model/shapes.js';
export * from './model/segments.js';
export * from './model/params.js';
export * from './tower/tower.js';
export * from './tower/crossing.js';
export * from './train/grouped-trainer.js';
export * from './train/metrics.js';
export * from './train/lr-schedule.js';
export * from './model/hash.js';
export * from './checkpoint/safetensors.js';
export * from './checkpoint/pytorch-names.js';
export * from './checkpoint/checkpoint.js';
export { paperSgd, type SgdHyper } from './kernels/sgd.js';
export { startKernelProfile, kernelProfile } from './kernels/kernel-runner.js';
