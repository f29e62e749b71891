/** GpuError's message: the work it spoiled, the first error and how many more, and for an out-of-memory error what to do. */
import test from 'ava';
import { GpuError } from '../src/index.js';

test('a GpuError names the work, the first error and how many more; out of memory says to try a smaller batch', (t) => {
  t.is(new GpuError('step 3', ['GPUValidationError: Buffer usages must not be 0.']).message, 'the GPU reported an error during step 3: GPUValidationError: Buffer usages must not be 0.');
  t.is(new GpuError('evaluation 2', ['GPUValidationError: a', 'GPUValidationError: b', 'GPUValidationError: c']).message, 'the GPU reported 3 errors during evaluation 2: GPUValidationError: a (and 2 more)');
  t.is(
    new GpuError('step 0', ['GPUOutOfMemoryError: Out of memory while allocating a buffer of 2147483648 bytes']).message,
    'the GPU reported an error during step 0: GPUOutOfMemoryError: Out of memory while allocating a buffer of 2147483648 bytes; the work does not fit in the GPU memory: try a smaller batch',
  );
});
