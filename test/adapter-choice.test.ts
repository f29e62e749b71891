/**
 * `--device N`: the worker opens Dawn's N-th WebGPU adapter, says which in its first log line, the
 * handshake and Status, and refuses an index it cannot open in one line. On webasm it does nothing
 * and says so. The webgpu cases run where a software Vulkan driver is named (VK_DRIVER_FILES, e.g.
 * Mesa's lavapipe), and are skipped, saying why, elsewhere.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { alexnetBin } from '@alexnet-mp/coordinator';
import { getPreset, vulkanLoaderFindable } from '@alexnet-mp/core';
import { PROTOCOL_VERSION, WorkerClient, describeWorkerDevice, modelIdentity, type HandshakeReply } from '@alexnet-mp/worker';
import { alexnet, startWorker } from './helpers.js';

const icds = process.env.VK_DRIVER_FILES?.split(':').filter(Boolean) ?? [];
const softwareDriver = icds.length === 1 && vulkanLoaderFindable() && process.env.ALEXNET_EXPECT_WEBGPU !== '1';
const needsDriver = (title: string) => (softwareDriver ? title : `${title} (skipped: needs VK_DRIVER_FILES naming one software Vulkan driver, e.g. Mesa's lavapipe ICD)`);
const withDriver = softwareDriver ? test : test.skip;

/** `alexnet ARGS` run to its end (refusals exit at once). */
function run(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [alexnetBin, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, err: r.stderr.split('\n').filter((l) => l && !/^Warning: maxDynamic/.test(l)) };
}

async function handshake(address: string): Promise<HandshakeReply> {
  const client = new WorkerClient(address, 1 << 20);
  try {
    return await client.handshake({ model: modelIdentity(getPreset('tiny'), PROTOCOL_VERSION), tower: 0, peer_address: '', run_id: 'adapter-choice' });
  } finally {
    client.close();
  }
}

test('on webasm --device does nothing, and the first log line says so', async (t) => {
  const { p } = await startWorker(t, 0, ['--device', '1']);
  const first = p.stdout.find((l) => l.includes(': preset '));
  t.regex(first ?? p.output(), /^alexnet worker 0: preset tiny, webasm, no adapter \(device 1 ignored on webasm: it runs on this machine's CPU cores\), pid \d+/);
  const reply = await handshake((await p.waitFor(/listening on (\S+)$/))[1]!);
  t.is(reply.device, 1, 'the index given, which webasm ignores');
});

test('the handshake, Status and the coordinator carry the adapter: on webasm the mode and "no adapter"', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const reply = await handshake(w0.address);
  t.is(reply.backend, 'webasm');
  t.is(reply.device, 0);
  t.is(reply.adapter, null);
  t.is(describeWorkerDevice(reply), 'no adapter');
  const client = new WorkerClient(w0.address, 1 << 20);
  t.teardown(() => client.close());
  t.is((await client.status()).adapter, null);
  const c = alexnet(['coordinator', '--workers', `${w0.address},${w1.address}`, '--preset', 'tiny', '--steps', '1', '--batch', '4']);
  t.is((await c.exited).code, 0, c.output());
  t.regex(c.stderr.join('\n'), /worker 0 \(tower 0\) at \S+: tiny \(\w+\), webasm, no adapter, pid \d+ on /);
});

withDriver(needsDriver('an index with no adapter is refused in one line listing the adapters there are'), (t) => {
  const r = run(['worker', '--tower', '0', '--port', '0', '--backend', 'webgpu', '--device', '9']);
  t.is(r.code, 2, r.err.join('\n'));
  t.is(r.err.length, 1, r.err.join('\n'));
  t.regex(r.err[0]!, /^alexnet: --device 9: there is no WebGPU adapter 9 here; the adapters are 0 '[^']+' \(vulkan\) \(--device 0\.\.0\)$/);
  // auto refuses it the same way: the index was asked for
  const auto = run(['worker', '--tower', '0', '--port', '0', '--backend', 'auto', '--device', '9']);
  t.is(auto.code, 2);
  t.regex(auto.err.join('\n'), /--device 9: there is no WebGPU adapter 9 here/);
});

withDriver(needsDriver('on webgpu the worker names its adapter, a software one as software, in its first log line, the handshake and Status'), async (t) => {
  const { p, address } = await startWorker(t, 0, ['--device', '0'], 'webgpu');
  t.regex(p.stdout.find((l) => l.includes(': preset ')) ?? p.output(), /preset tiny, webgpu on adapter 0 '[^']+' \([^)]*; a software adapter: it runs on the CPU\), pid/);
  const reply = await handshake(address);
  t.is(reply.backend, 'webgpu');
  t.is(reply.device, 0);
  t.like(reply.adapter, { index: 0, backend: 'vulkan', software: true, pci_address: '' });
  t.true((reply.adapter?.name.length ?? 0) > 0);
  t.regex(describeWorkerDevice(reply), /^adapter 0 '.+' \(.*a software adapter/);
  const client = new WorkerClient(address, 1 << 20);
  t.teardown(() => client.close());
  t.deepEqual((await client.status()).adapter, reply.adapter);
});

withDriver(needsDriver('two adapters of one name: the second is refused in one line saying why and what works'), (t) => {
  // a second copy of the same software driver: two adapters Dawn names alike
  const icd = JSON.parse(readFileSync(icds[0]!, 'utf8')) as { ICD: { library_path: string } };
  const dir = mkdtempSync(join(tmpdir(), 'alexnet-twin-icd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = join(dir, 'libtwin.so');
  copyFileSync(icd.ICD.library_path, lib);
  writeFileSync(join(dir, 'twin.json'), JSON.stringify({ ...icd, ICD: { ...icd.ICD, library_path: lib } }));
  // NODEVICE_SELECT=1: Mesa's device-select layer off, as on a machine without it
  const env = { ...process.env, VK_DRIVER_FILES: `${icds[0]}:${join(dir, 'twin.json')}`, NODEVICE_SELECT: '1' };
  const r = run(['worker', '--tower', '1', '--port', '0', '--backend', 'webgpu', '--device', '1'], env);
  t.is(r.code, 2, r.err.join('\n'));
  t.is(r.err.length, 1, r.err.join('\n'));
  t.regex(
    r.err[0]!,
    /^alexnet: --device 1: adapters 0 and 1 are both named '[^']+' and Dawn opens an adapter by name only; Mesa's device-select Vulkan layer, which tells them apart by PCI address, is not active here: .* or run each worker where only its GPU is visible .* with --device 0$/,
  );
  t.notRegex(r.err.join('\n'), /\n\s+at |internal error/);
  // with Mesa's device-select layer (where the driver's package has one): it lists both, but a
  // software driver gives no PCI address, so the refusal says that instead
  const share = join(dirname(icd.ICD.library_path), '..', '..', 'share');
  if (!existsSync(join(share, 'vulkan', 'implicit_layer.d', 'VkLayer_MESA_device_select.json'))) return;
  const { NODEVICE_SELECT: _, ...withLayer } = env;
  const layered = run(['worker', '--tower', '1', '--port', '0', '--backend', 'webgpu', '--device', '1'], { ...withLayer, XDG_DATA_DIRS: share });
  t.is(layered.code, 2, layered.err.join('\n'));
  t.is(layered.err.length, 1, layered.err.join('\n'));
  t.regex(layered.err[0]!, /^alexnet: --device 1: adapters 0 and 1 are both named '[^']+' and Dawn opens an adapter by name only; the driver gives no PCI address for '[^']+' \(VK_EXT_pci_bus_info\), so Mesa's device-select layer cannot tell them apart either; run each worker where only its GPU is visible/);
});

withDriver(needsDriver('predict on webgpu names the adapter it ran on'), (t) => {
  const image = join(mkdtempSync(join(tmpdir(), 'alexnet-predict-adapter-')), 'grey.png');
  t.teardown(() => rmSync(dirname(image), { recursive: true, force: true }));
  // a 1x1 grey PNG: predict resizes it to the model's input
  writeFileSync(image, Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==', 'base64'));
  const r = run(['predict', image, '--backend', 'webgpu']);
  t.is(r.code, 0, r.err.join('\n'));
  t.regex(r.err.join('\n'), /^alexnet predict: .*; both towers in this process \(webgpu on adapter 0 '[^']+' \([^)]*; a software adapter: it runs on the CPU\)\)$/m);
});
