/** How a worker's first log line says where its kernels run (adapter-report.ts describeThreads). */
import test from 'ava';
import { describeThreads } from '../src/adapter-report.js';

test('webasm: its own thread, N worker threads, or one per core; cpu mode: its own thread; webgpu: nothing, or --threads ignored', (t) => {
  t.is(describeThreads('webasm', 1, 1, 2, false), 'kernels on its own thread (--threads 1; node --single-threaded-gc keeps the garbage collector there too)');
  t.is(describeThreads('webasm', 1, 1, 2, true), 'kernels and garbage collection on its own thread (--threads 1, node --single-threaded-gc)');
  t.is(describeThreads('webasm', 3, 3, 8), 'kernels on 3 worker threads (--threads 3)');
  t.is(describeThreads('webasm', null, undefined, 8), 'kernels on 8 worker threads (one per core)');
  t.is(describeThreads('webasm', null, undefined, 1, false), 'kernels on its own thread (the one CPU this process may run on; node --single-threaded-gc keeps the garbage collector there too)');
  t.is(describeThreads('cpu', null, undefined, 8), 'kernels on its own thread (cpu mode)');
  t.is(describeThreads('cpu', 4, 4, 8), 'kernels on its own thread (cpu mode; --threads 4 ignored)');
  t.is(describeThreads('webgpu', null, undefined, 8), '');
  t.is(describeThreads('webgpu', 2, 2, 8), '--threads 2 ignored on webgpu');
});
