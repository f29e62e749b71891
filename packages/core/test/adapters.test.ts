/** Dawn's adapter list, how `--device N` reaches the N-th adapter, and telling identical GPUs apart (no GPU needed). */
import test from 'ava';
import {
  AdapterIndexError,
  describeAdapter,
  describeList,
  isSoftwareAdapter,
  parseAvailableAdapters,
  routeTo,
  sharedReason,
  type AdapterInfo,
  type ListedAdapter,
} from '../src/adapters.js';
import { driPrimeTag, isolationEnv, parseDeviceSelectList, pickTwin } from '../src/device-select.js';

const lavapipe = 'llvmpipe (LLVM 15.0.6, 256 bits)';
const listed = (...names: string[]): ListedAdapter[] => names.map((name) => ({ backend: 'vulkan', name }));

test("Dawn's 'Available adapters' text is parsed in its order, whichever rejection it comes with", (t) => {
  const plain = `no suitable backends found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA H200'\n * backend: 'vulkan', name: '${lavapipe}'`;
  t.deepEqual(parseAvailableAdapters(plain), [
    { backend: 'vulkan', name: 'NVIDIA H200' },
    { backend: 'vulkan', name: lavapipe },
  ]);
  const withBackend = `no adapter with backend 'vulkan' and name 'zzz' found\nAvailable adapters:\n * backend: 'vulkan', name: '${lavapipe}'\n`;
  t.deepEqual(parseAvailableAdapters(withBackend), [{ backend: 'vulkan', name: lavapipe }]);
  // a name with a quote in it keeps everything up to the line's last quote
  t.deepEqual(parseAvailableAdapters(`Available adapters:\r\n * backend: 'metal', name: 'Bob's GPU'\r\n`), [{ backend: 'metal', name: "Bob's GPU" }]);
  t.deepEqual(parseAvailableAdapters('Available adapters:'), []);
  t.is(parseAvailableAdapters("unrecognised backend 'x'\nPossible backends : 'null', 'vulkan'"), null, 'no list: null, not an empty list');
});

test('an adapter whose name reaches it first is opened by its name flag', (t) => {
  const list = listed('NVIDIA H200', 'NVIDIA H200 NVL', lavapipe);
  t.deepEqual(routeTo(list, 0), { kind: 'name', flag: 'adapter=NVIDIA H200' });
  t.deepEqual(routeTo(list, 1), { kind: 'name', flag: 'adapter=NVIDIA H200 NVL' }, 'no earlier name contains it');
  t.deepEqual(routeTo(list, 2), { kind: 'name', flag: `adapter=${lavapipe}` });
});

test('an index with no adapter is refused in one line that lists the adapters', (t) => {
  const list = listed('NVIDIA H200', lavapipe);
  for (const bad of [2, 7, -1, 0.5]) {
    const e = t.throws(() => routeTo(list, bad), { instanceOf: AdapterIndexError });
    t.is(e.name, 'AdapterIndexError');
    t.false(e.message.includes('\n'), 'one line');
  }
  t.is(
    (() => { try { routeTo(list, 2); } catch (e) { return (e as Error).message; } return ''; })(),
    `--device 2: there is no WebGPU adapter 2 here; the adapters are 0 'NVIDIA H200' (vulkan), 1 '${lavapipe}' (vulkan) (--device 0..1)`,
  );
  t.is(describeList([]), 'none');
});

test('identical names, and a name an earlier one contains, cannot be told apart by the name flag', (t) => {
  const twins = listed('NVIDIA H200', 'NVIDIA H200', lavapipe);
  const r0 = routeTo(twins, 0);
  const r1 = routeTo(twins, 1);
  t.deepEqual(r0, { kind: 'shared', name: 'NVIDIA H200', twins: [0, 1], rank: 0, shadowedBy: null });
  t.deepEqual(r1, { kind: 'shared', name: 'NVIDIA H200', twins: [0, 1], rank: 1, shadowedBy: null });
  if (r1.kind === 'shared') t.is(sharedReason(1, r1), "--device 1: adapters 0 and 1 are both named 'NVIDIA H200' and Dawn opens an adapter by name only");
  const three = routeTo(listed('A', 'A', 'A'), 2);
  if (three.kind === 'shared') t.regex(sharedReason(2, three), /adapters 0, 1 and 2 are all named 'A'/);
  const shadowed = routeTo(listed('NVIDIA H200 NVL', 'NVIDIA H200'), 1);
  t.deepEqual(shadowed, { kind: 'shared', name: 'NVIDIA H200', twins: [1], rank: 0, shadowedBy: 0 });
  if (shadowed.kind === 'shared') t.regex(sharedReason(1, shadowed), /adapter 0's name contains 'NVIDIA H200'/);
});

test('software adapters are recognised by what Dawn says, and described as such', (t) => {
  const dawnLavapipe = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true };
  t.true(isSoftwareAdapter(dawnLavapipe, lavapipe));
  t.true(isSoftwareAdapter({ architecture: 'software' }, 'some CPU driver'));
  t.true(isSoftwareAdapter({}, 'SwiftShader Device (Subzero)'));
  t.false(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', isFallbackAdapter: false }, 'NVIDIA H200'));
  const gpu: AdapterInfo = { index: 1, name: 'NVIDIA H200', backend: 'vulkan', vendor: 'nvidia', architecture: 'hopper', device: '', description: '', software: false };
  t.is(describeAdapter(gpu), "adapter 1 'NVIDIA H200' (nvidia hopper, vulkan)");
  t.is(describeAdapter({ ...gpu, pci: '0000:18:00.0' }), "adapter 1 'NVIDIA H200' (nvidia hopper, vulkan, PCI 0000:18:00.0)");
  t.is(describeAdapter({ ...gpu, index: 0, name: lavapipe, vendor: 'mesa', architecture: 'software', software: true }), `adapter 0 '${lavapipe}' (mesa, vulkan; a software adapter: it runs on the CPU)`);
});

test("Mesa's device-select list is parsed, and identical GPUs are told apart by PCI address", (t) => {
  const text = [
    'Warning: something else on stderr',
    'selectable devices:',
    '  GPU 0: 10de:2335 "NVIDIA H200" discrete GPU 0000:9a:00.0',
    '  GPU 1: 10de:2335 "NVIDIA H200" discrete GPU 0000:18:00.0',
    `  GPU 2: 10005:0 "${lavapipe}" CPU`,
  ].join('\n');
  const devices = parseDeviceSelectList(text)!;
  t.deepEqual(devices[0], { vendorId: 0x10de, deviceId: 0x2335, name: 'NVIDIA H200', type: 'discrete GPU', pci: '0000:9a:00.0' });
  t.deepEqual(devices[2], { vendorId: 0x10005, deviceId: 0, name: lavapipe, type: 'CPU', pci: null });
  t.is(parseDeviceSelectList('no layer here'), null);
  // in PCI address order, whatever order Vulkan lists them in
  t.deepEqual(pickTwin(devices, 'NVIDIA H200', 0), { pci: '0000:18:00.0' });
  t.deepEqual(pickTwin(devices, 'NVIDIA H200', 1), { pci: '0000:9a:00.0' });
  t.regex((pickTwin(devices, 'NVIDIA H200', 2) as { why: string }).why, /lists 2 device\(s\) named 'NVIDIA H200'/);
  const cpuTwins = parseDeviceSelectList(`selectable devices:\n  GPU 0: 10005:0 "${lavapipe}" CPU\n  GPU 1: 10005:0 "${lavapipe}" CPU\n`)!;
  t.regex((pickTwin(cpuTwins, lavapipe, 1) as { why: string }).why, /gives no PCI address/);
  t.is(driPrimeTag('0000:18:00.0'), 'pci-0000_18_00_0');
  t.deepEqual(isolationEnv('0000:18:00.0'), { DRI_PRIME: 'pci-0000_18_00_0', MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' });
});
