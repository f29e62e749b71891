/**
 * `alexnet features` (a layer's rows for every held-out image, as NumPy files) and `alexnet inspect
 * neighbours` (the held-out images nearest to one in a layer's space), on the shipped CIFAR-10 model and a
 * small image folder: a row is the image's `inspect activations --npy` values, both towers in a row; the
 * neighbours are the rows nearest the query's, in order; mistakes are one line, exit 2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { DEFAULT_MODEL_FILE } from '../packages/coordinator/src/trained-model.js';
import { decodeNpy } from '../packages/coordinator/src/npy.js';
import { gradientImage, writeFile } from '../packages/core/test/data-fixtures.js';
import { alexnet, type Proc } from './helpers.js';

const NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function finished(p: Proc): Promise<{ code: number | null; out: string[]; err: string[] }> {
  const { code } = await p.exited;
  return { code, out: p.stdout, err: p.stderr };
}

/** Ten classes, two held-out images each (20, in class order), and their cache. */
let fixture: Promise<{ dir: string; data: string; env: NodeJS.ProcessEnv }> | null = null;
function setUp() {
  fixture ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-features-'));
    dirs.push(dir);
    const data = path.join(dir, 'data');
    for (const [i, c] of NAMES.entries()) {
      writeFile(path.join(data, 'train', c, '0.png'), await gradientImage(36, 36, [25 * i, 200 - 15 * i, 60], 'png'));
      for (const k of [0, 1]) writeFile(path.join(data, 'test', c, `${k}.png`), await gradientImage(32 + 4 * k, 32, [255 - 25 * i, 40 + 20 * i, 90 * k], 'png'));
    }
    return { dir, data, env: { ...process.env, ALEXNET_CACHE_DIR: path.join(dir, 'cache') } };
  })();
  return fixture;
}

const row = (values: Float32Array, dim: number, j: number): Float32Array => values.subarray(j * dim, (j + 1) * dim);

test('features: a float32 row per held-out image (both towers\' fc7), its labels and files; a row is the image\'s inspect activations values', async (t) => {
  const { dir, data, env } = await setUp();
  const out = path.join(dir, 'fc7.npy');
  const f = await finished(alexnet(['features', '--data', data, '--out', out, '--backend', 'webasm'], { env }));
  t.is(f.code, 0, f.err.join('\n'));
  t.regex(f.out[0]!, /fc7\.npy: float32 \[20, 1024\], a row per image: tower 0's then tower 1's 512 units$/);
  const feats = decodeNpy(fs.readFileSync(out));
  t.deepEqual(feats.shape, [20, 1024]);
  t.true(feats.values instanceof Float32Array);
  const labels = decodeNpy(fs.readFileSync(path.join(dir, 'fc7.labels.npy')));
  t.true(labels.values instanceof Int32Array);
  t.deepEqual([...labels.values], NAMES.flatMap((_, i) => [i, i]));
  // the labels' names, for NumPy users without the model at hand
  t.deepEqual((JSON.parse(fs.readFileSync(path.join(dir, 'fc7.json'), 'utf8')) as { classes: string[] }).classes, NAMES);
  const files = fs.readFileSync(path.join(dir, 'fc7.files.txt'), 'utf8').trimEnd().split('\n');
  t.deepEqual(files, NAMES.flatMap((c) => [0, 1].map((k) => path.join(data, 'test', c, `${k}.png`))));
  // image 7 (cat/1.png) alone through inspect activations: the same 2 x 512 values
  const npy = path.join(dir, 'one.npy');
  const a = await finished(alexnet(['inspect', 'activations', '--model', DEFAULT_MODEL_FILE, '--image', files[7]!, '--layer', 'fc7', '--npy', npy, '--out', path.join(dir, 'one.png'), '--backend', 'webasm'], { env }));
  t.is(a.code, 0, a.err.join('\n'));
  const one = decodeNpy(fs.readFileSync(npy));
  t.deepEqual(one.shape, [2, 512]);
  const got = row(Float32Array.from(feats.values), 1024, 7);
  const scale = Math.max(...[...one.values].map(Math.abs));
  let worst = 0;
  for (let k = 0; k < 1024; k++) worst = Math.max(worst, Math.abs(got[k]! - one.values[k]!));
  t.true(worst <= 1e-5 * scale, `worst difference ${worst} of ${scale}`);
  // --limit: the first images only
  const lim = await finished(alexnet(['features', '--data', data, '--layer', 'pool5', '--limit', '3', '--out', path.join(dir, 'p5.npy'), '--backend', 'webasm'], { env }));
  t.is(lim.code, 0, lim.err.join('\n'));
  const p5 = decodeNpy(fs.readFileSync(path.join(dir, 'p5.npy')));
  t.is(p5.shape[0], 3);
  t.is(fs.readFileSync(path.join(dir, 'p5.files.txt'), 'utf8').trimEnd().split('\n').length, 3);
});

test('inspect neighbours: the nearest held-out rows to the query\'s, nearest first, the query image not its own neighbour; a file of the split finds itself at distance 0', async (t) => {
  const { dir, data, env } = await setUp();
  const out = path.join(dir, 'fc7n.npy');
  t.is((await finished(alexnet(['features', '--data', data, '--out', out, '--backend', 'webasm'], { env }))).code, 0);
  const feats = Float32Array.from(decodeNpy(fs.readFileSync(out)).values);
  const dist = (i: number, j: number) => Math.sqrt(row(feats, 1024, i).reduce((s, v, k) => s + (v - feats[j * 1024 + k]!) ** 2, 0));
  const want = Array.from({ length: 20 }, (_, j) => j).filter((j) => j !== 6).sort((a, b) => dist(6, a) - dist(6, b) || a - b).slice(0, 4);
  const png = path.join(dir, 'n.png');
  // no --model: the shipped one, as for features
  const n = await finished(alexnet(['inspect', 'neighbours', '--data', data, '--index', '6', '--count', '4', '--out', png, '--backend', 'webasm'], { env }));
  t.is(n.code, 0, n.err.join('\n'));
  t.regex(n.out[0]!, /n\.png: the 4 held-out images nearest to held-out image 6 \(\S+cat\/0\.png\) in fc7 \(1024 values, both towers; Euclidean\), of 19 searched/);
  const listed = n.out.flatMap((l) => {
    const m = /^ {2}(\d)\. held-out image (\d+): (\w+), distance ([\d.]+), (\S+)$/.exec(l);
    return m ? [{ rank: Number(m[1]), index: Number(m[2]), name: m[3]!, distance: Number(m[4]), file: m[5]! }] : [];
  });
  t.deepEqual(listed.map((x) => x.index), want);
  for (const x of listed) {
    t.true(Math.abs(x.distance - dist(6, x.index)) <= 1e-3 * Math.max(1, x.distance), `${x.index}: ${x.distance} vs ${dist(6, x.index)}`);
    t.is(x.name, NAMES[Math.floor(x.index / 2)]);
  }
  t.true(fs.statSync(png).size > 0);
  // the same search over the rows of `features` (its layer taken from the file): the same neighbours and distances
  const viaFile = await finished(alexnet(['inspect', 'neighbours', '--data', data, '--index', '6', '--count', '4', '--features', out, '--out', png, '--backend', 'webasm'], { env }));
  t.is(viaFile.code, 0, viaFile.err.join('\n'));
  t.regex(viaFile.out[0]!, /in fc7 \(1024 values, both towers; Euclidean\), of 19 searched \(the rows of \S+fc7n\.npy\) in /);
  t.deepEqual(viaFile.out.filter((l) => /^ {2}\d\./.test(l)), n.out.filter((l) => /^ {2}\d\./.test(l)));
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'fc7n.json'), 'utf8')).held_out, Array.from({ length: 20 }, (_, j) => j));
  // the data folder reached through a symbolic link: the same images, the same search
  const linked = path.join(dir, 'data-link');
  fs.symlinkSync(path.resolve(data), linked);
  const viaLink = await finished(alexnet(['inspect', 'neighbours', '--data', linked, '--index', '6', '--count', '4', '--features', out, '--out', png, '--backend', 'webasm'], { env }));
  t.is(viaLink.code, 0, viaLink.err.join('\n'));
  t.deepEqual(viaLink.out.filter((l) => /^ {2}\d\./.test(l)).map((l) => l.replace(/\S*data-link\S*/g, '').replace(/\S*\/data\S*/g, '')), viaFile.out.filter((l) => /^ {2}\d\./.test(l)).map((l) => l.replace(/\S*data-link\S*/g, '').replace(/\S*\/data\S*/g, '')));
  // a file of --limit rows: only those are searched, each named by its place in the split
  const p5 = path.join(dir, 'pool5-spread.npy');
  t.is((await finished(alexnet(['features', '--data', data, '--layer', 'pool5', '--limit', '5', '--out', p5, '--backend', 'webasm'], { env }))).code, 0);
  const held = JSON.parse(fs.readFileSync(path.join(dir, 'pool5-spread.json'), 'utf8')).held_out as number[];
  t.is(held.length, 5);
  const some = await finished(alexnet(['inspect', 'neighbours', '--data', data, '--index', String(held[0]), '--count', '3', '--features', p5, '--out', png, '--backend', 'webasm'], { env }));
  t.is(some.code, 0, some.err.join('\n'));
  t.regex(some.out[0]!, /in pool5 \(\d+ values, both towers; Euclidean\), of 4 searched \(the rows of /);
  t.true(some.out.filter((l) => /^ {2}\d\./.test(l)).every((l) => held.includes(Number(/held-out image (\d+)/.exec(l)![1]))), some.out.join('\n'));
  // a file as the query: held-out image 13 (dog/1.png) is its own nearest, at distance 0
  const f = await finished(alexnet(['inspect', 'neighbours', '--model', DEFAULT_MODEL_FILE, '--data', data, '--image', path.join(data, 'test', 'dog', '1.png'), '--count', '2', '--out', png, '--backend', 'webasm'], { env }));
  t.is(f.code, 0, f.err.join('\n'));
  t.regex(f.out.join('\n'), /^ {2}1\. held-out image 11: dog, distance 0\.0+\d*, /m);
});

test('--limit N takes N images spread over a split of several batches (a folder\'s is in class order), with their files; a failed run leaves an earlier file as it was', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-features-limit-'));
  dirs.push(dir);
  const data = path.join(dir, 'data');
  // 70 held-out images, 7 a class: more than one batch of 64
  for (const [i, c] of NAMES.entries()) {
    writeFile(path.join(data, 'train', c, '0.png'), await gradientImage(36, 36, [25 * i, 200 - 15 * i, 60], 'png'));
    for (let k = 0; k < 7; k++) writeFile(path.join(data, 'test', c, `${k}.png`), await gradientImage(32 + k, 32, [255 - 25 * i, 40 + 20 * i, 30 * k], 'png'));
  }
  const env = { ...process.env, ALEXNET_CACHE_DIR: path.join(dir, 'cache') };
  const out = path.join(dir, 'f.npy');
  const f = await finished(alexnet(['features', '--data', data, '--limit', '10', '--out', out, '--backend', 'webasm'], { env }));
  t.is(f.code, 0, f.err.join('\n'));
  t.notRegex(f.err.join('\n'), /internal error/);
  t.regex(f.err.join('\n'), /fc7 of 10 held-out images \(spread over the split\): 10 x 1024 floats, 41\.0 kB/);
  t.deepEqual([...decodeNpy(fs.readFileSync(path.join(dir, 'f.labels.npy'))).values], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'one image of each class');
  t.deepEqual(fs.readFileSync(path.join(dir, 'f.files.txt'), 'utf8').trimEnd().split('\n'), NAMES.map((c) => path.join(data, 'test', c, '0.png')));
  // all 70 in two batches
  const all = await finished(alexnet(['features', '--data', data, '--out', path.join(dir, 'all.npy'), '--backend', 'webasm'], { env }));
  t.is(all.code, 0, all.err.join('\n'));
  const rows = decodeNpy(fs.readFileSync(path.join(dir, 'all.npy')));
  t.deepEqual(rows.shape, [70, 1024]);
  // the spread rows are those of the whole split's images 0, 7, 14, ...
  const some = decodeNpy(fs.readFileSync(out)).values;
  for (let i = 0; i < 10; i++) {
    const a = row(Float32Array.from(some), 1024, i);
    const b = row(Float32Array.from(rows.values), 1024, 7 * i);
    t.true(a.every((v, k) => Math.abs(v - b[k]!) <= 1e-5 * Math.max(1, Math.abs(b[k]!))), `row ${i} is image ${7 * i}`);
  }
  // a run that fails (no such data set) leaves the earlier file whole, and no temporary file
  const before = fs.readFileSync(out);
  const bad = await finished(alexnet(['features', '--data', path.join(dir, 'none'), '--out', out, '--backend', 'webasm'], { env }));
  t.is(bad.code, 2, bad.err.join('\n'));
  t.true(fs.readFileSync(out).equals(before));
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('features and neighbours: mistakes are one line, exit 2', async (t) => {
  const { dir, data, env } = await setUp();
  // fc7 rows of 3 images, and the same files said to come from other weights
  t.is((await finished(alexnet(['features', '--data', data, '--limit', '3', '--out', path.join(dir, 'f.npy'), '--backend', 'webasm'], { env }))).code, 0);
  for (const ext of ['.npy', '.labels.npy', '.files.txt']) fs.copyFileSync(path.join(dir, `f${ext}`), path.join(dir, `other${ext}`));
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'f.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'other.json'), JSON.stringify({ ...meta, model: 'another model', weights: '0123456789abcdef' }));
  fs.writeFileSync(path.join(dir, 'lone.npy'), 'x');
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
  fs.writeFileSync(path.join(dir, 'mine.json'), '{"mine": 1}\n');
  const cases: [string[], RegExp][] = [
    [['features', '--data', data, '--out', path.join(dir, 'x.txt')], /^alexnet: --out \S+x\.txt: give a file name ending in \.npy/],
    [['features', '--data', data, '--out', path.join(dir, 'x.npy'), '--layer', 'fc9'], /^alexnet: no layer "fc9" in preset cifar/],
    [['features', '--data', data, '--out', path.join(dir, 'nope', 'x.npy')], /^alexnet: --out \S+: the folder \S+nope does not exist$/],
    [['features', '--data', data, '--out', path.join(dir, 'f.labels.npy')], /^alexnet: --out \S+f\.labels\.npy is the labels file of the features in \S+f\.npy: write it elsewhere, e\.g\. --out \S+features\.npy$/],
    [['features', '--model', DEFAULT_MODEL_FILE, '--out', path.join(dir, 'x.npy')], /^alexnet: features --model needs --data/],
    // a file of another kind under a .npy name is not replaced, nor a user's own file where a companion would go
    [['features', '--data', data, '--out', path.join(dir, 'mine.npy')], /^alexnet: --out \S+mine\.npy: \S+mine\.json exists and is not the description of an earlier alexnet features --out \S+mine\.npy: it would be replaced\. Give another --out \(or remove that file first\)$/],
    [['features', '--data', data, '--out', path.join(dir, 'lone.npy')], /^alexnet: --out \S+lone\.npy exists and is not a NumPy \.npy file: it would be replaced\. Give a new file name \(or remove that file first\)$/],
    // inspect activations --npy does not replace a features file's rows or labels (their description would no longer fit)
    [['inspect', 'activations', '--image', path.join(data, 'test', 'cat', '0.png'), '--layer', 'fc7', '--npy', path.join(dir, 'f.npy')], /^alexnet: --npy \S+f\.npy is the rows of the features described in \S+f\.json: write it elsewhere, e\.g\. --npy maps\.npy, or remove \S+f\.npy, \S+f\.labels\.npy and \S+f\.json first to replace them$/],
    [['inspect', 'activations', '--image', path.join(data, 'test', 'cat', '0.png'), '--layer', 'fc7', '--npy', path.join(dir, 'f.labels.npy')], /^alexnet: --npy \S+f\.labels\.npy is the labels file of the features in \S+f\.npy: write it elsewhere, e\.g\. --npy maps\.npy, or remove \S+f\.npy and its companions first to replace them$/],
    [['inspect', 'neighbours', '--model', DEFAULT_MODEL_FILE, '--data', data], /^alexnet: give the query as --image FILE or --index N/],
    [['inspect', 'neighbours', '--coordinator', '127.0.0.1:1', '--index', '0'], /^alexnet: inspect neighbours runs every held-out image through the model in this process: give --run RUN_DIR or --model FILE/],
    [['inspect', 'neighbours', '--model', DEFAULT_MODEL_FILE, '--data', data, '--index', '20', '--backend', 'webasm'], /^alexnet: --index 20: the held-out split has 20 images \(0 to 19\)$/],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--features', path.join(dir, 'none.npy')], /^alexnet: --features \S+none\.npy: no such file \(alexnet features --out F\.npy writes one\)$/],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--features', path.join(dir, 'lone.npy')], /^alexnet: --features \S+lone\.npy: \S+lone\.json is missing \(what the rows are\); make the files again with alexnet features --out /],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--features', path.join(dir, 'f.labels.npy')], /^alexnet: --features \S+f\.labels\.npy is the labels file of the features in \S+f\.npy: give that one$/],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--features', path.join(dir, 'notes.txt')], /^alexnet: --features \S+notes\.txt: not a features file: give the F\.npy that alexnet features --out F\.npy wrote/],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--features', path.join(dir, 'f.npy'), '--limit', '3'], /^alexnet: --limit with --features: the file's rows are searched/],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--limit', '1', '--backend', 'webasm'], /^alexnet: --limit 1: no held-out image to search but the query itself: give --limit 2 or more$/],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--features', path.join(dir, 'f.npy'), '--layer', 'fc6', '--backend', 'webasm'], /^alexnet: --features \S+f\.npy: its rows are fc7, not fc6: give --layer fc7, or make them again/],
    [['inspect', 'neighbours', '--data', data, '--index', '0', '--features', path.join(dir, 'other.npy'), '--backend', 'webasm'], /^alexnet: --features \S+other\.npy: its rows come from another model \(weights 0123456789abcdef\), not from models\/cifar10\.safetensors .*\(weights [0-9a-f]{16}\): make them again/],
  ];
  for (const [args, re] of cases) {
    const p = await finished(alexnet(args, { env }));
    t.is(p.code, 2, `${args.join(' ')}: ${p.err.join('\n')}`);
    const lines = p.err.filter((l) => l.startsWith('alexnet: '));
    t.is(lines.length, 1, `${args.join(' ')}: ${p.err.join('\n')}`);
    t.regex(lines[0] ?? '', re);
  }
  t.false(fs.existsSync(path.join(dir, 'x.npy')), 'no features file left by a refused run');
  t.deepEqual(decodeNpy(fs.readFileSync(path.join(dir, 'f.npy'))).shape, [3, 1024], 'the features refused as --npy are as they were');
  t.deepEqual(decodeNpy(fs.readFileSync(path.join(dir, 'f.labels.npy'))).shape, [3]);
  t.is(fs.readFileSync(path.join(dir, 'lone.npy'), 'utf8'), 'x');
  t.is(fs.readFileSync(path.join(dir, 'mine.json'), 'utf8'), '{"mine": 1}\n');
});
