import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Device, BackendFallbackError, NoWebGPUError, vulkanLoaderFindable } from '../src/device.js';
import { Gemm, gemmShape } from '../src/kernels/gemm.js';
import { Conv2dForward } from '../src/kernels/conv2d-forward.js';
import { Lrn } from '../src/kernels/lrn.js';
import { MaxPool } from '../src/kernels/maxpool.js';
import { assertClose, randomArray } from './helpers.js';

test('webasm and cpu modes compute the same kernels, each in the mode it asked for', async (t) => {
  const wasm = await Device.create('webasm');
  const cpu = await Device.create('cpu');
  const x = randomArray(3 * 2 * 9 * 9, 1, 20);
  const w = randomArray(4 * 3 * 3 * 3, 2);
  const b = randomArray(4, 3);
  const shape = { C: 3, N: 2, H: 9, W: 9, O: 4, R: 3, stride: 2, pad: 1 };
  const [yw, yc] = await Promise.all([new Conv2dForward(wasm, 'conv', shape).run(x, w, b), new Conv2dForward(cpu, 'conv', shape).run(x, w, b)]);
  await assertClose(t, yw.y, yc.y, 1e-5, 'conv2d');
  const lrn = { type: 'lrn' as const, name: 'lrn', size: 5, alpha: 1e-4, beta: 0.75, k: 2 };
  await assertClose(t, (await new Lrn(wasm, 'lrn', lrn, 3, 162).forward(x)).b, (await new Lrn(cpu, 'lrn', lrn, 3, 162).forward(x)).b, 1e-5, 'lrn');
  await assertClose(t, (await new MaxPool(wasm, 'pool', 6, 9, 9, 3, 2).forward(x)).y, (await new MaxPool(cpu, 'pool', 6, 9, 9, 3, 2).forward(x)).y, 1e-7, 'pool');
  const a = randomArray(10 * 20, 4);
  const bb = randomArray(20 * 30, 5);
  await assertClose(t, await new Gemm(wasm, 'gemm', gemmShape(10, 30, 20)).run(a, bb), await new Gemm(cpu, 'gemm', gemmShape(10, 30, 20)).run(a, bb), 1e-4, 'gemm');
  t.true(wasm.executed.size >= 5);
  for (const [name, mode] of wasm.executed) t.is(mode, 'webasm', name);
  for (const [name, mode] of cpu.executed) t.is(mode, 'cpu', name);
  wasm.destroy();
  cpu.destroy();
});

test('a kernel that gpu.js silently moves to cpu is an error under the strict policy and a warning otherwise', async (t) => {
  // kernel maps are one of the things webasm hands to the cpu backend
  const make = (d: Device) =>
    (d.gpu.createKernelMap as unknown as (m: object, f: (this: never, a: number[]) => number, s: object) => (a: Float32Array) => unknown)(
      { twice: function (v: number) { return v * 2; } },
      function (this: { thread: { x: number } }, a: number[]) { return a[this.thread.x]! + 1; },
      { output: [8] },
    );
  const strict = await Device.create('webasm', { onFallback: 'throw' });
  const k = make(strict);
  k(new Float32Array(8));
  t.throws(() => strict.checkKernel('mapped', k), { instanceOf: BackendFallbackError, message: /asked for gpu.js mode "webasm" but ran on "cpu"/ });
  const warnings: string[] = [];
  const lenient = await Device.create('webasm', { onFallback: 'warn', warn: (m) => warnings.push(m) });
  const k2 = make(lenient);
  k2(new Float32Array(8));
  lenient.checkKernel('mapped', k2);
  lenient.checkKernel('mapped', k2);
  t.is(warnings.length, 1, 'warned once per kernel');
  t.regex(warnings[0]!, /ran on "cpu"/);
  strict.destroy();
  lenient.destroy();
});

test('asking for webgpu where no adapter answers is a clear error, and auto picks webasm', async (t) => {
  if (process.env.ALEXNET_EXPECT_WEBGPU === '1') {
    // this machine has a GPU: auto must find it
    t.is((await Device.create('auto')).mode, 'webgpu');
    return;
  }
  await t.throwsAsync(() => Device.create('webgpu'), { message: /no WebGPU adapter answered.*--backend webasm/ });
  const d = await Device.create('auto');
  t.is(d.mode, 'webasm');
  d.destroy();
});

test('the Vulkan loader is looked for where the dynamic linker looks', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alexnet-vulkan-'));
  writeFileSync(join(dir, 'libvulkan.so.1'), '');
  t.true(vulkanLoaderFindable({ LD_LIBRARY_PATH: `/nonexistent:${dir}` }, 'linux'));
  t.true(vulkanLoaderFindable({}, 'darwin'), 'Dawn needs no Vulkan loader off Linux');
  rmSync(dir, { recursive: true });
});

test('auto on a machine without a Vulkan loader picks webasm without Dawn printing a native warning', async (t) => {
  if (vulkanLoaderFindable()) {
    t.pass('this machine has a Vulkan loader: auto asks Dawn for an adapter');
    return;
  }
  const device = fileURLToPath(new URL('../src/device.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `import { Device } from ${JSON.stringify(device)}; const d = await Device.create('auto'); console.log(d.mode); d.destroy();`], { encoding: 'utf8' });
  t.is(child.status, 0, child.stderr);
  t.is(child.stdout.trim(), 'webasm');
  t.notRegex(child.stderr, /Vulkan/);
  await t.throwsAsync(() => Device.create('webgpu'), { instanceOf: NoWebGPUError, message: /Vulkan loader, libvulkan\.so\.1.*--backend webasm/ });
});
