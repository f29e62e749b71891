/** launch gives each worker a GPU of its own where the host has two, and says where they run otherwise. */
import test from 'ava';
import type { AdapterInfo } from '@alexnet-mp/core';
import { colocatedThreads, planDevices, threadsLine, workerNodeFlags } from '../src/launch-devices.js';

const adapter = (index: number, name: string, software = false): AdapterInfo => ({
  index,
  name,
  backend: 'vulkan',
  vendor: software ? 'mesa' : 'nvidia',
  architecture: software ? 'software' : 'hopper',
  device: '',
  description: '',
  software,
});
const lavapipe = 'llvmpipe (LLVM 15.0.6, 256 bits)';

test('two GPUs or more: worker 0 on device 0, worker 1 on device 1', (t) => {
  const two = [adapter(0, 'NVIDIA H200'), adapter(1, 'NVIDIA H200'), adapter(2, lavapipe, true)];
  t.deepEqual(planDevices('auto', two), { devices: [0, 1], line: "two GPUs: worker 0 on device 0 'NVIDIA H200', worker 1 on device 1 'NVIDIA H200'" });
  t.deepEqual(planDevices('webgpu', two).devices, [0, 1]);
  const four = [0, 1, 2, 3].map((i) => adapter(i, 'NVIDIA H200'));
  t.regex(planDevices('webgpu', four).line!, /\(4 GPUs here; the others stay idle\)$/);
});

test('one GPU: both workers on it, and launch says so', (t) => {
  t.deepEqual(planDevices('auto', [adapter(0, 'NVIDIA H200'), adapter(1, lavapipe, true)]), { devices: [0, 0], line: "one GPU: both workers on device 0 'NVIDIA H200' (GPU 0)" });
});

test('no GPU: auto says the workers run webasm, webgpu puts both on the software adapter, webasm and cpu say nothing', (t) => {
  const soft = [adapter(0, lavapipe, true)];
  t.deepEqual(planDevices('auto', soft), { devices: null, line: `no GPU here, only the software adapter device 0 '${lavapipe}': both workers on webasm (--backend webgpu runs them on it)` });
  t.deepEqual(planDevices('webgpu', soft), { devices: [0, 0], line: `no GPU here: both workers on the software adapter device 0 '${lavapipe}', which runs on the CPU` });
  t.deepEqual(planDevices('auto', []), { devices: null, line: 'no WebGPU adapter here: both workers on webasm' });
  t.deepEqual(planDevices('webgpu', []), { devices: null, line: null }, 'the workers refuse, saying why');
  for (const b of ['webasm', 'cpu']) t.deepEqual(planDevices(b, [adapter(0, 'NVIDIA H200'), adapter(1, 'NVIDIA H200')]), { devices: null, line: null });
});

test('on CPUs each of the two workers gets half the cores for its kernels, at least one, and launch says so', (t) => {
  t.is(colocatedThreads(1), 1);
  t.is(colocatedThreads(2), 1);
  t.is(colocatedThreads(3), 1);
  t.is(colocatedThreads(16), 8);
  t.is(threadsLine(1, false, 2, {}), "this machine's 2 CPU cores: 1 kernel thread for each worker (half the cores each; --threads N to choose), garbage collection on that thread too (node --single-threaded-gc)");
  t.is(threadsLine(4, true, 8), "this machine's 8 CPU cores: 4 kernel threads for each worker (--threads)");
  t.is(threadsLine(1, false, 1, {}), "this machine's 1 CPU core: 1 kernel thread for each worker (at least one each; --threads N to choose), garbage collection on that thread too (node --single-threaded-gc)");
});

test("a worker computing on its own thread gets V8's garbage collector there too; one with a pool of kernel threads, or on a GPU, keeps V8's default", (t) => {
  t.deepEqual(workerNodeFlags(1, {}), ['--single-threaded-gc']);
  t.deepEqual(workerNodeFlags(2, {}), []);
  t.deepEqual(workerNodeFlags(null, {}), []);
  t.deepEqual(workerNodeFlags(1, { ALEXNET_SINGLE_THREADED_GC: '0' }), [], 'V8 default asked for');
  t.is(threadsLine(1, false, 2, { ALEXNET_SINGLE_THREADED_GC: '0' }), "this machine's 2 CPU cores: 1 kernel thread for each worker (half the cores each; --threads N to choose)");
});
