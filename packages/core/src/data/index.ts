/**
 * @alexnet-mp/core/data: real data for training and evaluation. Image folders
 * (ImageNet layout) and CIFAR-10 (binary batches, downloaded on demand),
 * decoded once into a cache, augmented as the paper did (random crops, flips,
 * PCA colour noise, mean subtraction) in a worker thread, prefetched, and the
 * evaluation views (centre, ten patches). A separate entry point from the
 * core's so that processes that never read images (the workers) never load
 * sharp's native library.
 */
export * from './errors.js';
export * from './image-folder.js';
export * from './label-file.js';
export * from './partial-decode.js';
export * from './decode.js';
export * from './decoded-set.js';
export * from './cifar-binary.js';
export * from './cache-file.js';
export * from './decoded-cache.js';
export * from './download.js';
export * from './stats.js';
export * from './augment.js';
export * from './batches.js';
export * from './eval.js';
export * from './set-ref.js';
export * from './dataset.js';
export * from './prefetch.js';
export * from './batch-thread.js';
export { SyntheticBatches, synthesise, type SyntheticBatch, type SyntheticShape } from './synthetic.js';
