import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Device, BackendFallbackError } from '../src/device.js';
import { vulkanDriverManifests, vulkanLoaderFindable, whyNoVulkan } from '../src/vulkan-presence.js';
import { AdapterIndexError, describeAdapter } from '../src/adapters.js';
import { surveyAdapters } from '../src/adapter-survey.js';
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

test('webasm threads: 1 runs every kernel on the calling thread, N on N worker threads, absent one per core; the results are the same', async (t) => {
  const { Kernel } = await import('../src/kernels/kernel-runner.js');
  const body = function (this: { thread: { x: number; y: number } }, a: Float32Array) {
    return a[this.thread.y * 64 + this.thread.x] * 3 + this.thread.x;
  };
  const a = Float32Array.from({ length: 64 * 128 }, (_, i) => i % 11);
  const runs: { path: string; out: number[] }[] = [];
  for (const threads of [1, 2, undefined]) {
    const dev = await Device.create('webasm', { onFallback: 'throw' }, threads === undefined ? {} : { threads });
    t.is(dev.threads, threads ?? null);
    // 8192 cells: past the 4096 from which gpu.js's webasm hands a kernel to its worker threads (the first run
    // of a size always goes to the pool: the measured choice, wasm-thread-choice.test.ts, starts its trial there)
    const k = new Kernel(dev, `threads-${threads}`, body, { output: [64, 128] });
    const out = [...(await k.run(a))];
    runs.push({ path: (k as unknown as { k: { kernel: { _lastRunPath: string } } }).k.kernel._lastRunPath, out });
  }
  t.not(runs[0]!.path, 'threaded', 'threads 1: on the calling thread');
  t.is(runs[1]!.path, 'threaded');
  t.is(runs[2]!.path, 'threaded');
  t.deepEqual(runs[0]!.out, runs[1]!.out);
  t.deepEqual(runs[0]!.out, runs[2]!.out);
  await t.throwsAsync(Device.create('webasm', { onFallback: 'throw' }, { threads: 0 }), { instanceOf: RangeError, message: /threads must be a whole number >= 1, got 0/ });
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

// what this machine offers: a GPU (ALEXNET_EXPECT_WEBGPU=1 says one must be found), a software adapter
// (Mesa's lavapipe through VK_DRIVER_FILES, as the webgpu tests run on CPUs), or no adapter
const survey = surveyAdapters();
const softwareDriver = process.env.VK_DRIVER_FILES !== undefined && vulkanLoaderFindable() && process.env.ALEXNET_EXPECT_WEBGPU !== '1';

test('asking for webgpu where no adapter answers is a clear error, and auto picks webasm', async (t) => {
  if (process.env.ALEXNET_EXPECT_WEBGPU === '1') {
    // this machine has a GPU: auto must find it, and not a software adapter
    const d = await Device.create('auto');
    t.is(d.mode, 'webgpu');
    t.false(d.adapter!.software, JSON.stringify(d.adapter));
    return;
  }
  const adapters = await survey;
  if (adapters.length > 0) {
    t.pass(`this machine has WebGPU adapters (${adapters.map((a) => a.name).join(', ')}): the test below covers it`);
    return;
  }
  await t.throwsAsync(() => Device.create('webgpu'), { message: /no WebGPU adapter answered.*--backend webasm/ });
  const d = await Device.create('auto');
  t.is(d.mode, 'webasm');
  d.destroy();
});

const softwareTitle = 'with only a software adapter, auto trains on webasm and says so once; --backend webgpu runs on it, naming it software; an index with no adapter is refused';
(softwareDriver ? test : test.skip)(softwareDriver ? softwareTitle : `${softwareTitle} (skipped: no software Vulkan driver named here; VK_DRIVER_FILES set to Mesa's lavapipe ICD gives one)`, async (t) => {
  const adapters = await survey;
  if (adapters.length === 0 || adapters.some((a) => !a.software)) {
    t.pass(`VK_DRIVER_FILES is set but the adapters here are ${adapters.map((a) => `${a.name}${a.software ? ' (software)' : ''}`).join(', ') || 'none'}: not a software-only machine`);
    return;
  }
  const warnings: string[] = [];
  const policy = { onFallback: 'throw' as const, warn: (m: string) => warnings.push(m) };
  const auto = await Device.create('auto', policy);
  t.is(auto.mode, 'webasm');
  t.is(auto.adapter, null);
  t.regex(auto.note ?? '', /^auto does not train on the software adapter 0 '.+'$/);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /^auto chose webasm: the only WebGPU adapter here is a software one, adapter 0 '.+' \(.*; a software adapter: it runs on the CPU\); --backend webgpu runs on it anyway$/);
  (await Device.create('auto', policy)).destroy();
  t.is(warnings.length, 1, 'said once per process');

  const explicit = await Device.create('webgpu', policy, { device: 0 });
  t.is(explicit.mode, 'webgpu');
  t.is(explicit.adapter?.index, 0);
  t.is(explicit.adapter?.name, adapters[0]!.name);
  t.true(explicit.adapter?.software);
  t.regex(describeAdapter(explicit.adapter!), /a software adapter: it runs on the CPU/);

  const n = adapters.length;
  await t.throwsAsync(() => Device.create('webgpu', policy, { device: n }), { instanceOf: AdapterIndexError, message: new RegExp(`^--device ${n}: there is no WebGPU adapter ${n} here; the adapters are 0 '`) });
  await t.throwsAsync(() => Device.create('auto', policy, { device: n }), { instanceOf: AdapterIndexError });
  t.is(warnings.length, 1);
  auto.destroy();
  explicit.destroy();
});

test('the Vulkan loader is looked for where the dynamic linker looks', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alexnet-vulkan-'));
  writeFileSync(join(dir, 'libvulkan.so.1'), '');
  t.true(vulkanLoaderFindable({ LD_LIBRARY_PATH: `/nonexistent:${dir}` }, 'linux'));
  t.true(vulkanLoaderFindable({}, 'darwin'), 'Dawn needs no Vulkan loader off Linux');
  rmSync(dir, { recursive: true });
});

test('the Vulkan driver manifests are looked for where the Vulkan loader looks: VK_DRIVER_FILES alone when set, else the XDG and system vulkan/icd.d folders', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alexnet-icd-'));
  const data = join(dir, 'data', 'vulkan', 'icd.d');
  const config = join(dir, 'home', '.config', 'vulkan', 'icd.d');
  mkdirSync(data, { recursive: true });
  mkdirSync(config, { recursive: true });
  writeFileSync(join(data, 'lvp_icd.x86_64.json'), '{}');
  writeFileSync(join(data, 'README'), '');
  writeFileSync(join(config, 'nvidia_icd.json'), '{}');
  const none = join(dir, 'none');
  // the defaults: XDG_DATA_DIRS's and HOME's .config folders (the system folders may add more on this machine)
  const found = vulkanDriverManifests({ HOME: join(dir, 'home'), XDG_DATA_DIRS: join(dir, 'data') });
  t.true(found.includes(join(data, 'lvp_icd.x86_64.json')));
  t.true(found.includes(join(config, 'nvidia_icd.json')));
  t.false(found.some((f) => f.endsWith('README')), 'only .json files are manifests');
  // VK_DRIVER_FILES (a file or a folder) replaces every default place; VK_ICD_FILENAMES is its older name
  t.deepEqual(vulkanDriverManifests({ HOME: join(dir, 'home'), VK_DRIVER_FILES: join(data, 'lvp_icd.x86_64.json') }), [join(data, 'lvp_icd.x86_64.json')]);
  t.deepEqual(vulkanDriverManifests({ HOME: join(dir, 'home'), VK_ICD_FILENAMES: `${none}:${config}` }), [join(config, 'nvidia_icd.json')]);
  t.deepEqual(vulkanDriverManifests({ VK_DRIVER_FILES: none, VK_ADD_DRIVER_FILES: data }), [], 'VK_ADD_DRIVER_FILES is not read when VK_DRIVER_FILES is set');
  t.true(vulkanDriverManifests({ HOME: none, XDG_DATA_DIRS: none, VK_ADD_DRIVER_FILES: data }).includes(join(data, 'lvp_icd.x86_64.json')));
  // the reason given when there is none
  if (vulkanLoaderFindable()) {
    t.is(whyNoVulkan({ VK_DRIVER_FILES: none }, 'linux'), `the Vulkan loader finds no driver: VK_DRIVER_FILES names ${none}, and no manifest is there`);
    t.is(whyNoVulkan({ VK_DRIVER_FILES: data }, 'linux'), null);
  }
  t.is(whyNoVulkan({ VK_DRIVER_FILES: none }, 'darwin'), null, 'Dawn needs no Vulkan off Linux');
  rmSync(dir, { recursive: true });
});

test('auto on a machine where Dawn would find no Vulkan driver picks webasm without Dawn printing a native warning; webgpu says why', async (t) => {
  // VK_DRIVER_FILES naming nothing: the loader would find no driver (or, on a machine without one, no loader)
  const device = fileURLToPath(new URL('../src/device.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `import { Device } from ${JSON.stringify(device)}; const d = await Device.create('auto'); console.log(d.mode); d.destroy();
     try { await Device.create('webgpu'); } catch (e) { console.log(e.message); }`],
    { encoding: 'utf8', env: { ...process.env, VK_DRIVER_FILES: '/nonexistent/alexnet-icd.json' } });
  t.is(child.status, 0, child.stderr);
  const [mode, refusal] = child.stdout.trim().split('\n');
  t.is(mode, 'webasm');
  t.regex(refusal ?? '', /^no WebGPU adapter answered \((the Vulkan loader finds no driver: VK_DRIVER_FILES names \/nonexistent\/alexnet-icd\.json, and no manifest is there|Dawn needs the Vulkan loader, libvulkan\.so\.1, and the dynamic linker has none)\); use --backend webasm/);
  t.notRegex(child.stderr, /Vulkan|vkCreateInstance/);
});

test("webasm's pool of kernel threads: --threads N gives N, 1 the calling thread, none a thread per CPU this process may use, or the calling thread where it may use one", async (t) => {
  const { poolSizeOf } = await import('../src/kernels/kernel-runner.js');
  t.is(poolSizeOf(3, 8), 3);
  t.is(poolSizeOf(1, 8), 0);
  t.is(poolSizeOf(null, 8), 8);
  t.is(poolSizeOf(null, 1), 0);
});
