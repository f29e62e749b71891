/**
 * Inspection end to end, with real worker processes: the live answers (the
 * coordinator's inspection service over gRPC, asking both workers) equal the
 * checkpoint's (both towers in this process) for the same weights: kernels,
 * feature maps before and after the crossings, fc8 on tower 0 only, and the
 * predictions' logits; inspecting while training runs delays it between
 * steps and leaves it unharmed; `alexnet inspect` writes PNGs of the
 * expected sizes whose towers differ; mistakes are one line.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { tiny } from '@alexnet-mp/core';
import { SyntheticSource, type Coordinator } from '@alexnet-mp/coordinator';
import type { InspectService } from '../packages/coordinator/src/inspect/service.js';
import { CheckpointSource, LiveSource } from '../packages/coordinator/src/inspect/source.js';
import { gridSize } from '../packages/coordinator/src/inspect/grid.js';
import { predictionsSize } from '../packages/coordinator/src/inspect/predictions.js';
import { mapShape } from '../packages/coordinator/src/inspect/layers.js';
import { decodeNpy } from '../packages/coordinator/src/npy.js';
import { mapStats } from '../packages/coordinator/src/inspect/stats.js';
import { alexnet, startWorker } from './helpers.js';
import { inspectedRun, liveMatchesCheckpoint } from './inspected-run.js';

const B = 8;
const SEED = 3;

interface Fixture {
  runDir: string;
  coordinator: Coordinator;
  service: InspectService;
  image: string;
}

let fixture: Promise<Fixture> | null = null;
const cleanups: (() => Promise<void> | void)[] = [];
test.after.always(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** Two workers, 3 training steps, a checkpoint of step 3 in runDir, the inspection service; an image file. */
function setUp(): Promise<Fixture> {
  fixture ??= (async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-inspect-'));
    cleanups.push(() => fs.rmSync(runDir, { recursive: true, force: true }));
    const [w0, w1] = await Promise.all([startWorker((f) => cleanups.push(f), 0, ['--max-batch', String(B)]), startWorker((f) => cleanups.push(f), 1, ['--max-batch', String(B)])]);
    const { coordinator, service } = await inspectedRun((f) => cleanups.push(f), [w0.address, w1.address], runDir, { batch: B, seed: SEED, steps: 3 });
    // an image file of another size than the input (decoded and cut to the centre view like evaluation images)
    const image = path.join(runDir, 'image.png');
    const px = Buffer.alloc(40 * 30 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
    await sharp(px, { raw: { width: 40, height: 30, channels: 3 } }).png().toFile(image);
    return { runDir, coordinator, service, image };
  })();
  return fixture;
}

test.serial('the live path (coordinator service, both workers) gives the checkpoint path\'s kernels, feature maps and logits for the same weights', async (t) => {
  const f = await setUp();
  const live = await LiveSource.open(f.service.address);
  const ck = CheckpointSource.open(f.runDir, { backend: 'webasm' });
  t.teardown(async () => {
    await live.close();
    await ck.close();
  });
  const { imageInput } = await import('../packages/coordinator/src/inspect/image-input.js');
  const img = await imageInput(f.image, tiny);
  t.is(img.length, 3 * 16 * 16);
  await liveMatchesCheckpoint(t, live, ck, img, 3);
});

test.serial('inspecting while training runs: served between steps, training and evaluation numbering unharmed', async (t) => {
  const f = await setUp();
  const c = f.coordinator;
  const live = await LiveSource.open(f.service.address);
  t.teardown(() => live.close());
  const start = c.stepsCompleted;
  const { imageInput } = await import('../packages/coordinator/src/inspect/image-input.js');
  const img = await imageInput(f.image, tiny);
  const steps: number[] = [];
  const running = c.run(4, (m) => steps.push(m.step), { onCheckpoint: () => {} });
  // asked while a step is in flight: answered between two steps
  const [a, k] = await Promise.all([live.activations(img, 'pool5'), live.kernels('conv2')]);
  await running;
  t.deepEqual(steps, [start, start + 1, start + 2, start + 3]);
  t.true(a.step >= start && a.step <= start + 4);
  t.true(k.step >= start && k.step <= start + 4);
  t.truthy(a.towers[0] && a.towers[1]);
  // evaluations still number consecutively on both workers after inspections took numbers
  const e = await c.evaluateBatch(await new SyntheticSource(tiny, SEED + 9).batch(0, 5));
  t.is(e.batch, 5);
  const status = await Promise.all(c.clients.map((w) => w.status()));
  t.deepEqual(status.map((s) => s.state), ['READY', 'READY']);
  t.is(status[0]!.evaluations_done, status[1]!.evaluations_done);
});

test.serial('`alexnet inspect` writes PNGs of the expected sizes whose towers differ, and prints each tower\'s colour score', async (t) => {
  const f = await setUp();
  const out = path.join(f.runDir, 'k.png');
  const p = alexnet(['inspect', 'kernels', '--run', f.runDir, '--out', out, '--columns', '4']);
  t.is((await p.exited).code, 0, p.output());
  t.regex(p.output(), /tower 0: 0\.\d{3} \(median 0\.\d{3}\) over 4 kernels/);
  t.regex(p.output(), /tower 1: 0\.\d{3} \(median 0\.\d{3}\) over 4 kernels/);
  const g = gridSize(4, 3, 3, { columns: 4 });
  const halves = async (file: string, height: number) => {
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    t.is(info.height, 2 * height + 3);
    const row = info.width * info.channels;
    return [data.subarray(0, height * row), data.subarray((height + 3) * row)] as const;
  };
  t.is((await sharp(out).metadata()).width, g.width);
  const [k0, k1] = await halves(out, g.height);
  t.false(Buffer.from(k0).equals(Buffer.from(k1)));

  // --run given a checkpoint file, or the checkpoints folder: without --out, the picture goes to RUN_DIR/inspect
  const ck = path.join(f.runDir, 'checkpoints');
  const file = fs.readdirSync(ck).filter((n) => n.endsWith('.safetensors')).sort()[0]!;
  const byFile = alexnet(['inspect', 'kernels', '--run', path.join(ck, file), '--backend', 'webasm']);
  t.is((await byFile.exited).code, 0, byFile.output());
  const byFolder = alexnet(['inspect', 'kernels', '--run', ck, '--backend', 'webasm']);
  t.is((await byFolder.exited).code, 0, byFolder.output());
  const made = fs.readdirSync(path.join(f.runDir, 'inspect'));
  t.true(made.includes(`kernels-conv1-step${Number(/\d+/.exec(file)![0])}.png`), made.join(' '));
  t.false(fs.existsSync(path.join(ck, 'inspect')), 'nothing written inside checkpoints/');

  const aout = path.join(f.runDir, 'a.png');
  const q = alexnet(['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--layer', 'conv2', '--out', aout, '--backend', 'webasm']);
  t.is((await q.exited).code, 0, q.output());
  const [C, H] = mapShape(tiny, 'conv2').shape;
  const ga = gridSize(C, H, H, { minTile: 32 });
  t.is((await sharp(aout).metadata()).width, ga.width);
  const [a0, a1] = await halves(aout, ga.height);
  t.false(Buffer.from(a0).equals(Buffer.from(a1)));

  const pout = path.join(f.runDir, 'p.png');
  const r = alexnet(['inspect', 'predictions', '--coordinator', f.service.address, '--count', '3', '--out', pout]);
  t.is((await r.exited).code, 0, r.output());
  // three images of the tiny preset's 16 pixels, drawn 8x: the picture predictionsSize lays out
  const want = predictionsSize(3, tiny.inputSize * Math.floor(128 / tiny.inputSize));
  const meta = await sharp(pout).metadata();
  t.deepEqual([meta.width, meta.height], [want.width, want.height]);
  // more than the run evaluates at once: one line saying its limit and why
  const most = f.coordinator.maxEvalBatch;
  const over = alexnet(['inspect', 'predictions', '--coordinator', f.service.address, '--count', String(most + 1), '--out', pout]);
  t.is((await over.exited).code, 2, over.output());
  t.regex(over.stderr.join('\n'), new RegExp(`^alexnet: .*--count ${most + 1}: this run evaluates at most ${most} images at once \\(its batch or --eval-batch, which sizes its messages\\): give --count ${most} or less$`, 'm'));
});

test.serial('`alexnet inspect activations --npy --json`: the maps as NumPy float32 [tower, map, h, w] and each tower\'s statistics, those of the checkpoint\'s forward pass', async (t) => {
  const f = await setUp();
  const ck = CheckpointSource.open(f.runDir, { backend: 'webasm' });
  t.teardown(() => ck.close());
  const { imageInput } = await import('../packages/coordinator/src/inspect/image-input.js');
  const want = await ck.activations(await imageInput(f.image, tiny), 'conv2');
  const [C, H, W] = mapShape(tiny, 'conv2').shape;
  const npy = path.join(f.runDir, 'out', 'conv2.npy');
  fs.mkdirSync(path.dirname(npy), { recursive: true });
  const p = alexnet(['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--layer', 'conv2', '--npy', npy, '--json', '--out', path.join(f.runDir, 'a2.png'), '--backend', 'webasm']);
  t.is((await p.exited).code, 0, p.output());
  t.is(p.stdout.length, 1, 'one JSON line');
  const j = JSON.parse(p.stdout[0]!) as { npy: string; shape: number[]; step: number; towers: { tower: number; maps: number; values_per_map: number; min: number; mean: number; max: number; zeros: number; zero_maps: number }[] };
  t.deepEqual(j.shape, [2, C, H, W]);
  t.is(j.step, want.step);
  const { shape, values } = decodeNpy(fs.readFileSync(j.npy));
  t.deepEqual(shape, [2, C, H, W]);
  t.deepEqual(values.subarray(0, C * H * W), want.towers[0]!, 'tower 0, bit for bit');
  t.deepEqual(values.subarray(C * H * W), want.towers[1]!, 'tower 1, bit for bit');
  for (const s of j.towers) {
    const m = mapStats(want.towers[s.tower]!, C, H * W);
    t.deepEqual([s.maps, s.values_per_map, s.min, s.mean, s.max, s.zeros, s.zero_maps], [m.maps, m.perMap, m.min, m.mean, m.max, m.zeros, m.zeroMaps]);
  }
  // without --json: the statistics in words, a line a tower; fc8 only on tower 0, as [tower, unit]
  const q = alexnet(['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--layer', 'fc8', '--npy', path.join(f.runDir, 'fc8.npy'), '--out', path.join(f.runDir, 'a8.png'), '--backend', 'webasm']);
  t.is((await q.exited).code, 0, q.output());
  t.regex(q.output(), /^ {2}tower 0: 4 units: min -?[\d.e-]+, mean -?[\d.e-]+, std [\d.e-]+, max -?[\d.e-]+; \d+\.\d% zeros; \d of 4 units all zero$/m);
  t.regex(q.output(), /fc8\.npy: the values, float32 \[1, 4\] \(tower, unit\)/);
  t.regex(q.output(), /: fc8 of \S+ after step \d+, tower 0 \(tower 1 does not compute it\), one scale for all its maps, \d+x\d+ pixels$/m);
  // without --out: named after the image's folder and name, in the run's inspect/ folder
  const named = alexnet(['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--layer', 'conv1', '--backend', 'webasm']);
  t.is((await named.exited).code, 0, named.output());
  const stem = `${path.basename(path.dirname(path.resolve(f.image)))}-${path.basename(f.image).replace(/\.[^.]*$/, '')}`;
  const written = /^(\S+\.png): conv1 of /m.exec(named.output())?.[1] ?? '';
  t.is(path.dirname(written), path.join(f.runDir, 'inspect'));
  t.regex(path.basename(written), new RegExp(`^activations-conv1-${stem}-step\\d+\\.png$`));
  t.true(fs.existsSync(written));
  t.deepEqual(decodeNpy(fs.readFileSync(path.join(f.runDir, 'fc8.npy'))).shape, [1, 4]);
});

test.serial('a bad layer, a missing run directory or image, no coordinator: one line each, exit code 2', async (t) => {
  const f = await setUp();
  // a port where something listens that is no inspection service (a TLS one, a web server): said so, not "nothing there"
  const other = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  t.teardown(() => other.close());
  const otherAddress = `127.0.0.1:${(other.address() as net.AddressInfo).port}`;
  // files of another kind where a picture or values would go
  for (const name of ['notes.png', 'notes.npy']) fs.writeFileSync(path.join(f.runDir, name), 'notes, not a picture\n');
  const cases: [string[], RegExp][] = [
    [['inspect', 'kernels', '--coordinator', otherAddress], /^alexnet: something listens at 127\.0\.0\.1:\d+ but does not answer as an inspection service \(.*\): it may serve TLS: give --tls DIR/],
    [['inspect', 'kernels', '--run', path.join(f.runDir, 'nope')], /^alexnet: --run .*nope: no such run directory$/],
    [['inspect', 'kernels', '--run', f.runDir, '--layer', 'pool1'], /^alexnet: layer pool1 has no kernels: kernels are drawn for the conv layers, conv1, conv2, conv3, conv4, conv5$/],
    [['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--layer', 'conv9'], /^alexnet: no layer "conv9" in preset tiny: choose one of conv1, relu1, /],
    [['inspect', 'activations', '--coordinator', f.service.address, '--image', f.image, '--layer', 'conv9'], /^alexnet: no layer "conv9" in preset tiny/],
    [['inspect', 'activations', '--run', f.runDir, '--image', path.join(f.runDir, 'none.jpg')], /^alexnet: --image .*none\.jpg: no such file$/],
    [['inspect', 'kernels', '--run', f.runDir, '--layer', 'conv2', '--input-idx', '0:2'], /^alexnet: --input-idx 0:2: a slice shows one channel \(grey\) or three \(as RGB\), not 2$/],
    [['inspect', 'kernels', '--run', f.runDir, '--out', path.join(f.runDir, 'k.jpg')], /^alexnet: --out .*k\.jpg: give a file name ending in \.png \(the picture is a PNG\)$/],
    [['inspect', 'kernels', '--run', f.runDir, '--model', f.image], /^alexnet: give only one of --run RUN_DIR \(a checkpoint\), --model FILE \(a model file\) or --coordinator HOST:PORT/],
    [['inspect', 'kernels', '--model', f.image, '--step', '1'], /^alexnet: --step picks a checkpoint of a run: give it with --run RUN_DIR$/],
    [['inspect', 'kernels', '--coordinator', '127.0.0.1:1'], /^alexnet: no coordinator answered at 127\.0\.0\.1:1 /],
    [['inspect', 'predictions', '--coordinator', f.service.address, '--data', f.runDir], /^alexnet: --data is for --run or --model: a running coordinator shows its own run's held-out images$/],
    [['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--npy', path.join(f.runDir, 'maps.txt')], /^alexnet: --npy .*maps\.txt: give a file name ending in \.npy$/],
    [['inspect', 'kernels', '--run', f.runDir, '--out', path.join(f.image, 'k.png')], /^alexnet: --out .*image\.png\/k\.png: .*image\.png is not a folder$/],
    // a folder that is not there is refused (not made), as export and features refuse one
    [['inspect', 'kernels', '--run', f.runDir, '--out', path.join(f.runDir, 'no-such', 'k.png')], /^alexnet: --out .*no-such\/k\.png: the folder .*no-such does not exist$/],
    [['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--npy', path.join(f.runDir, 'no-such', 'maps.npy')], /^alexnet: --npy .*no-such\/maps\.npy: the folder .*no-such does not exist$/],
    // an existing file of another kind is not replaced by the picture or the values
    [['inspect', 'kernels', '--run', f.runDir, '--out', path.join(f.runDir, 'notes.png')], /^alexnet: --out .*notes\.png exists and is not a PNG picture: it would be replaced\. Give a new file name \(or remove that file first\)$/],
    [['inspect', 'activations', '--run', f.runDir, '--image', f.image, '--npy', path.join(f.runDir, 'notes.npy')], /^alexnet: --npy .*notes\.npy exists and is not a NumPy \.npy file: it would be replaced/],
  ];
  for (const [args, re] of cases) {
    const p = alexnet(args);
    const { code } = await p.exited;
    t.is(code, 2, `${args.join(' ')}: ${p.output()}`);
    // (a coordinator that does not answer is waited for, and said, before the error)
    const lines = p.stderr.filter((l) => !/Vulkan|BackendVk|^\s*$|^alexnet inspect: waiting for the coordinator at /.test(l));
    t.is(lines.length, 1, `${args.join(' ')}: ${p.output()}`);
    t.regex(lines[0] ?? '', re);
  }
  // none of --run, --model and --coordinator: the shipped model, as predict, evaluate and neighbours take it
  const shipped = alexnet(['inspect', 'kernels', '--out', path.join(f.runDir, 'shipped.png'), '--backend', 'webasm']);
  t.is((await shipped.exited).code, 0, shipped.output());
  t.regex(shipped.output(), /shipped\.png: conv1 after step \d+, 32 kernels 5x5 per tower[\s\S]*from models\/cifar10\.safetensors \(preset cifar/);
});
