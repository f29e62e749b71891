/**
 * `alexnet inspect kernels|activations|predictions`: pictures of what each
 * tower holds, from a run directory's latest checkpoint (--run), a model file
 * (--model, alexnet export's) or a running coordinator (--coordinator
 * HOST:PORT, its --inspect-port). See docs/inspect.md.
 */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { backendChoices, concatFloats, type RequestedBackend } from '@alexnet-mp/core';
import { FeatureExtractor } from '../features.js';
import { captionedTilesPng, heldOutImages, nearestHeldOut, nearestInFile, tileOf, type Captioned } from '../inspect/neighbours.js';
import { FeatureFile } from '../inspect/feature-file.js';
import { openHeldOutFor } from '../training-data.js';
import { DEFAULT_MODEL_FILE, shownPath } from '../trained-model.js';
import { checkNotFeaturesFile, checkOutputFile } from '../output-kinds.js';
import { runOfCheckpointFile, runOfCheckpointsFolder } from '../resume.js';
import { UserError } from './errors.js';
import { checkAddress, checkRunStep, positiveInt } from './options.js';
import { needsDataError } from './model-options.js';
import { securityFrom, securityOptions, type SecurityArgs } from './security-options.js';
import { CheckpointSource, LiveSource, type InspectSource } from '../inspect/source.js';
import { imageInput } from '../inspect/image-input.js';
import { activationPicture, describeScore, kernelPicture, predictionsPicture } from '../inspect/render.js';
import { writeOutput, writePng } from '../inspect/png.js';
import { mapShape } from '../inspect/layers.js';
import { describeStats, mapStats } from '../inspect/stats.js';
import { encodeNpy } from '../npy.js';
import { COMMAND_LIST } from './command-list.js';

interface CommonArgs extends SecurityArgs {
  run?: string;
  step?: number;
  model?: string;
  coordinator?: string;
  out?: string;
  columns?: number;
  /** Not given: auto (told apart so that --coordinator can refuse it). */
  backend?: string;
  data?: string;
  'cache-dir'?: string;
}

/** The options every inspect command has; `heldOut`: it reads a data set's held-out images (predictions, neighbours). */
const commonOptions = (y: Argv, heldOut = false, columns = 16) =>
  y.options({
    run: { type: 'string', describe: "a run directory: its latest checkpoint (RUN_DIR/checkpoints) unless --step, both towers computed in this process" },
    step: { type: 'number', describe: 'with --run: the checkpoint of this step (one the run kept: RUN_DIR/checkpoints/step-N)' },
    model: { type: 'string', describe: 'a model file (alexnet export; none of --run, --model and --coordinator: the shipped models/cifar10.safetensors), both towers computed in this process' },
    coordinator: { type: 'string', describe: "a running coordinator's inspection address HOST:PORT (alexnet coordinator --inspect-port; launch prints it): asks the workers, between two training steps" },
    out: { type: 'string', describe: 'the PNG to write, a name ending in .png (default: RUN_DIR/inspect/... with --run, ./inspect/... otherwise)' },
    columns: { type: 'number', describe: `tiles a row (default ${columns}, or fewer)` },
    backend: { choices: backendChoices, describe: 'with --run or --model: the gpu.js mode of the forward passes (default auto)' },
    ...(heldOut
      ? {
          data: { type: 'string', describe: "with --run or --model (or neither: the shipped model): the data set whose held-out images to use (a folder without train/: its val/ or test/, or its own class folders; default: the run's own; a model file needs it)" },
          'cache-dir': { type: 'string', describe: 'with --run or --model (or neither): the data cache folder (as for training)' },
        }
      : {}),
    // with --coordinator: the credentials it asks for (its own: --tls DIR takes DIR/coordinator.pem)
    ...securityOptions,
  } as const);

/**
 * An image file's part of a default picture name: its folder and name without extension (`cat-0000` for
 * test/cat/0000.jpg), so that images of the same name in two folders do not write one file.
 */
function imageStem(image: string): string {
  const name = path.basename(image).replace(/\.[^.]*$/, '');
  const folder = path.basename(path.dirname(path.resolve(image)));
  return path.dirname(image) === '.' || folder === '' ? name : `${folder}-${name}`;
}

/** `--data`'s part of a default picture name (`-pets-` for --data ~/pets), so that two data sets' pictures of one model do not write one file; '-' without --data. */
export function dataStem(data: string | undefined): string {
  if (data === undefined) return '-';
  const name = path.basename(path.resolve(data)).replace(/[^A-Za-z0-9._-]+/g, '_');
  return name === '' ? '-' : `-${name}-`;
}

/** The source named by --run, --model or --coordinator (exactly one). */
async function openSource(a: CommonArgs): Promise<InspectSource> {
  const given = [a.run, a.model, a.coordinator].filter((x) => x !== undefined).length;
  if (given > 1) throw new UserError('give only one of --run RUN_DIR (a checkpoint), --model FILE (a model file) or --coordinator HOST:PORT (a running coordinator)');
  // as predict, evaluate and features: none of them is the shipped model
  if (given === 0) a = { ...a, model: shownPath(DEFAULT_MODEL_FILE) };
  if (a.out !== undefined && !/\.png$/i.test(a.out)) throw new UserError(`--out ${a.out}: give a file name ending in .png (the picture is a PNG)`);
  // a missing folder is refused, as export and features refuse one (the default ./inspect/ is made)
  if (a.out !== undefined) {
    checkOutputFile(a.out, '--out', 'picture.png', 'png');
  }
  if (a.columns !== undefined) positiveInt(a.columns, 'columns');
  checkRunStep(a.step, a.run);
  if (a.coordinator !== undefined && (a.data !== undefined || a['cache-dir'] !== undefined)) {
    throw new UserError(`${a.data !== undefined ? '--data' : '--cache-dir'} is for --run or --model: a running coordinator shows its own run's held-out images`);
  }
  if (a.coordinator !== undefined && a.backend !== undefined) throw new UserError(`--backend is for --run or --model: a running coordinator's workers compute on their own devices`);
  const o = { backend: (a.backend ?? 'auto') as RequestedBackend, step: a.step, data: a.data, cacheDir: a['cache-dir'], info: (l: string) => process.stderr.write(`alexnet inspect: ${l}\n`), modelGiven: given > 0 };
  if (a.run !== undefined) return CheckpointSource.open(a.run, o);
  if (a.model !== undefined) return CheckpointSource.openModel(a.model, o);
  return LiveSource.open(checkAddress(a.coordinator!, 'coordinator'), { security: securityFrom(a, 'coordinator'), info: o.info });
}

/**
 * --out, or a file named for what it shows under RUN_DIR/inspect (or ./inspect with --model or --coordinator);
 * --run RUN_DIR/checkpoints or one of its checkpoints is RUN_DIR here too.
 */
const outFile = (a: CommonArgs, name: string): string => a.out ?? path.join(a.run !== undefined ? runFolderOf(a.run) : '.', 'inspect', name);

/** The run folder of --run: itself, or the run of the checkpoint or checkpoints/ folder it names. */
const runFolderOf = (run: string): string => runOfCheckpointFile(run)?.runDir ?? runOfCheckpointsFolder(run) ?? run;

async function withSource(a: CommonArgs, f: (s: InspectSource) => Promise<void>): Promise<void> {
  const s = await openSource(a);
  try {
    await f(s);
  } finally {
    await s.close();
  }
}

const say = (line: string) => process.stdout.write(line + '\n');
/** How often a long search (every held-out image through the model) says how far it is. */
const PROGRESS_MS = 10_000;

interface KernelArgs extends CommonArgs {
  layer: string;
  'input-idx'?: string;
}

const kernelsCommand: CommandModule<object, KernelArgs> = {
  command: 'kernels',
  describe: "a layer's kernels, tower 0's above tower 1's (as the paper's Figure 3), and each tower's colour score",
  builder: (y) =>
    commonOptions(y).options({
      layer: { type: 'string', default: 'conv1', describe: 'a conv layer: conv1 .. conv5' },
      'input-idx': { type: 'string', describe: 'for kernels with more than 3 input channels: the input channel K to show (grey), or a slice A:B of 1 or 3 channels (3: as RGB); default 0' },
    })
      .example('$0 inspect kernels --run runs/c10', "conv1's kernels of both towers after the run's latest checkpoint, with their colour scores")
      .example('$0 inspect kernels --layer conv2 --input-idx 0:3', "the shipped model's conv2 kernels, their first three input channels as RGB") as never,
  handler: (a) =>
    withSource(a, async (s) => {
      const k = await s.kernels(a.layer);
      const pic = kernelPicture(k, a['input-idx'], { columns: a.columns });
      // the input channels shown are part of the name: --input-idx 1 does not overwrite the RGB picture
      const input = a['input-idx'] === undefined ? '' : `-in${a['input-idx'].replace(':', '-')}`;
      const file = await writePng(outFile(a, `kernels-${a.layer}${input}-step${k.step}.png`), pic.raster);
      const [out, inCh, kh, kw] = k.towers[0].shape;
      say(`${file}: ${a.layer} after step ${k.step}, ${out} kernels ${kh}x${kw} per tower (${pic.shows}; each kernel scaled on its own, 0 = mid grey), tower 0 above tower 1, ${pic.raster.width}x${pic.raster.height} pixels`);
      say(`from ${s.description}`);
      if (pic.scores[0] && pic.scores[1]) {
        say(`colour score (share of each kernel's energy in the two chroma channels of an opponent colour transform; grey 0, pure colour 1, random ~0.667):`);
        pic.scores.forEach((sc, t) => say(`  tower ${t}: ${describeScore(sc!)}`));
      } else say(`no colour score: ${a.layer}'s kernels have ${inCh} input channels, not RGB`);
    }),
};

interface ActivationArgs extends CommonArgs {
  layer: string;
  image: string;
  scale: 'shared' | 'each';
  npy?: string;
  json: boolean;
}

const activationsCommand: CommandModule<object, ActivationArgs> = {
  command: 'activations',
  describe: "each tower's feature maps of one layer for one image (centre view, as evaluated), tower 0's above tower 1's in one PNG",
  builder: (y) =>
    commonOptions(y).options({
      image: { type: 'string', demandOption: true, describe: 'an image file (JPEG, PNG, ...): decoded like the training images, its centre crop as evaluation takes it' },
      layer: { type: 'string', default: 'conv2', describe: 'any layer of the preset: conv1, relu1, lrn1, pool1, ... fc8 (conv and fc layers after their ReLU)' },
      scale: { choices: ['shared', 'each'] as const, default: 'shared' as const, describe: 'one brightness scale for all maps of both towers, or each map on its own' },
      npy: { type: 'string', describe: 'also write the values as a NumPy .npy file, float32 [tower, map, height, width] (fc layers: [tower, unit]); the towers that compute the layer' },
      json: { type: 'boolean', default: false, describe: 'print one JSON object (the files, the shape, each tower\'s statistics) instead of the lines' },
    })
      .example('$0 inspect activations --image cat.jpg', "each tower's conv2 maps of cat.jpg in the shipped model")
      .example('$0 inspect activations --run runs/c10 --image cat.jpg --layer fc7 --npy fc7.npy', 'fc7 of a run, its values for NumPy too') as never,
  handler: (a) => {
    if (a.npy !== undefined && !a.npy.endsWith('.npy')) throw new UserError(`--npy ${a.npy}: give a file name ending in .npy`);
    // said before anything is computed: a missing folder is refused, as --out's
    if (a.npy !== undefined) {
      checkOutputFile(a.npy, '--npy', 'maps.npy', 'npy');
      checkNotFeaturesFile(a.npy, '--npy', 'maps.npy');
    }
    return withSource(a, async (s) => {
      const images = await imageInput(a.image, s.spec);
      const act = await s.activations(images, a.layer);
      const raster = activationPicture(s.spec, a.layer, act, 1, 0, { columns: a.columns, scale: a.scale });
      const file = await writePng(outFile(a, `activations-${a.layer}-${imageStem(a.image)}-step${act.step}.png`), raster);
      const [C, H, W] = mapShape(s.spec, a.layer).shape;
      const computed = act.towers.flatMap((x, t) => (x ? [{ tower: t, values: x }] : []));
      const stats = computed.map(({ tower, values }) => ({ tower, ...mapStats(values, C, H * W) }));
      // in the JSON, the field names of the run's other JSON (snake case)
      const jsonStats = stats.map((st) => ({ tower: st.tower, maps: st.maps, values_per_map: st.perMap, min: st.min, mean: st.mean, std: st.std, max: st.max, zeros: st.zeros, zero_maps: st.zeroMaps }));
      const shape = H * W === 1 ? [computed.length, C] : [computed.length, C, H, W];
      const npy = a.npy === undefined ? null : writeOutput(a.npy, encodeNpy(concatFloats(computed.map((c) => c.values)), shape));
      if (a.json) {
        say(JSON.stringify({ png: file, npy, layer: a.layer, image: a.image, step: act.step, shape, towers: jsonStats, source: s.description }));
        return;
      }
      const towers = computed.map((c) => `tower ${c.tower}`);
      const scaleWords = a.scale === 'each' ? 'each map scaled on its own' : towers.length < 2 ? 'one scale for all its maps' : 'one scale for both towers';
      say(`${file}: ${a.layer} of ${a.image} after step ${act.step}, ${towers.join(' above ')}${towers.length < 2 ? ' (tower 1 does not compute it)' : ''}, ${scaleWords}, ${raster.width}x${raster.height} pixels`);
      say(`from ${s.description}`);
      for (const st of stats) say(`  tower ${st.tower}: ${C} ${H * W > 1 ? `maps ${H}x${W}` : 'units'}: ${describeStats(st)}`);
      if (npy) say(`${npy}: the values, float32 [${shape.join(', ')}] (${shape.length === 4 ? 'tower, map, height, width' : 'tower, unit'})`);
    });
  },
};

/** The most held-out images one predictions picture shows (each a tile with its top-5 bars). */
const MAX_PREDICTIONS = 256;

interface PredictionArgs extends CommonArgs {
  count: number;
}

const predictionsCommand: CommandModule<object, PredictionArgs> = {
  command: 'predictions',
  describe: 'held-out images with their top-5 predictions (as cuda-convnet shownet --show-preds)',
  builder: (y) =>
    commonOptions(y, true, 4)
      .options({ count: { type: 'number', default: 8, describe: `how many held-out images (evenly spaced over the split; at most ${MAX_PREDICTIONS}; with --coordinator, at most the run's evaluation batch)` } })
      .example('$0 inspect predictions --run runs/c10', "8 of the run's held-out images with its top-5 guesses")
      .example('$0 inspect predictions --data cifar10 --count 32', "32 CIFAR-10 test images with the shipped model's guesses") as never,
  handler: (a) => {
    positiveInt(a.count, 'count');
    if (a.count > MAX_PREDICTIONS) throw new UserError(`--count ${a.count}: one picture shows at most ${MAX_PREDICTIONS} images (alexnet predict classifies any number of files)`);
    return withSource(a, async (s) => {
      const p = await s.predictions(a.count);
      const png = await predictionsPicture(s.spec, p, a.columns);
      const file = await writePng(outFile(a, `predictions${dataStem(a.data)}step${p.step}.png`), png);
      say(`${file}: ${p.labels.length} held-out images after step ${p.step} with their top-5 predictions`);
      say(`from ${s.description}`);
    });
  },
};

interface NeighbourArgs extends CommonArgs {
  layer?: string;
  image?: string;
  index?: number;
  count: number;
  limit?: number;
  features?: string;
}

const neighboursCommand: CommandModule<object, NeighbourArgs> = {
  command: 'neighbours',
  aliases: ['neighbors'],
  describe: "the held-out images nearest to an image in a layer's space (Euclidean, both towers' values; the paper's Figure 4 on fc7), as one PNG and a list",
  builder: (y) =>
    commonOptions(y, true, 9).options({
      image: { type: 'string', describe: 'the query: an image file (decoded and cut to the centre view as evaluation images are). The model: --run, --model, else the shipped CIFAR-10 model' },
      index: { type: 'number', describe: 'the query: held-out image N (0-based, in the split\'s order, as evaluate --wrong numbers them); it is not its own neighbour' },
      layer: { type: 'string', describe: 'any layer of the preset: conv1, relu1, lrn1, pool1, ... fc8 (default fc7, or the layer of --features)' },
      count: { type: 'number', default: 8, describe: 'neighbours to show (at most 64)' },
      limit: { type: 'number', describe: 'search N held-out images spread evenly over the split (default all)' },
      features: { type: 'string', describe: "search the rows of `alexnet features --out F.npy` (checked to be this layer, model and data set) instead of running every held-out image through the model: a query in seconds" },
    })
      // every held-out image runs through the model in this process: not a running coordinator's (nor its credentials)
      .hide('coordinator')
      .hide('tls')
      .hide('tls-ca')
      .hide('tls-cert')
      .hide('tls-key')
      .hide('token-file')
      .hide('token')
      .example('$0 inspect neighbours --data cifar10 --index 3000', "the shipped model's 8 nearest test images to test image 3000 in fc7")
      .example('$0 inspect neighbours --run runs/c10 --image cat.jpg --count 16', "a run's 16 nearest held-out images to cat.jpg") as never,
  handler: async (a) => {
    if ((a.image === undefined) === (a.index === undefined)) throw new UserError('give the query as --image FILE or --index N (a held-out image), one of them');
    if (a.coordinator !== undefined) throw new UserError('inspect neighbours runs every held-out image through the model in this process: give --run RUN_DIR or --model FILE, not --coordinator');
    positiveInt(a.count, 'count');
    if (a.count > 64) throw new UserError(`--count ${a.count}: one picture shows at most 64 neighbours`);
    if (a.limit !== undefined) positiveInt(a.limit, 'limit');
    if (a.limit !== undefined && a.features !== undefined) throw new UserError('--limit with --features: the file\'s rows are searched (give --limit to alexnet features instead)');
    if (a.index !== undefined && !(Number.isInteger(a.index) && a.index >= 0)) throw new UserError(`--index must be a whole number >= 0, got ${a.index}`);
    const file = a.features !== undefined ? FeatureFile.open(a.features) : null;
    const layer = a.layer ?? file?.meta.layer ?? 'fc7';
    return withSource(a, async (s) => {
      if (!(s instanceof CheckpointSource)) throw new UserError('inspect neighbours needs --run or --model');
      const model = s.model;
      mapShape(s.spec, layer);
      const dataName = model.dataName();
      if (dataName === null) throw needsDataError('inspect neighbours', 'the held-out images to search', s.modelGiven ? model.file : undefined);
      // the rows' layer and weights before any image is decoded
      file?.checkModel(model, layer);
      const info = (l: string) => process.stderr.write(`alexnet inspect: ${l}\n`);
      const data = await openHeldOutFor(model, dataName, a['cache-dir'], info);
      const extractor = await FeatureExtractor.create(model, layer, (a.backend ?? 'auto') as RequestedBackend);
      try {
        const S = s.spec.inputSize;
        const names = await model.classNames();
        const nameOf = (c: number) => names[c] ?? `class ${c}`;
        const files = data.heldOutFiles;
        file?.checkSplit(layer, dataName, files);
        const q = a.image !== undefined ? { image: await imageInput(a.image, s.spec), label: null } : (await heldOutImages(data, [a.index!])).get(a.index!)!;
        const query = await extractor.rows(q.image, 1);
        const t0 = performance.now();
        const search = { query, exclude: a.index, count: a.count, limit: a.limit };
        // every held-out image goes through the model (minutes for a test set on CPUs): how far, every 10 s
        let said = t0;
        const progress = (n: number) => {
          if (performance.now() - said < PROGRESS_MS) return;
          said = performance.now();
          info(`${n} held-out images through ${layer} so far, ${((said - t0) / 1000).toFixed(0)} s (alexnet features --out F.npy once, then --features F.npy, searches them in a second)`);
        };
        const { neighbours, searched } = file ? await nearestInFile(file, data, search) : await nearestHeldOut(model, data, extractor, search, progress);
        if (neighbours.length === 0) {
          throw new UserError(
            a.limit !== undefined
              ? `--limit ${a.limit}: no held-out image to search but the query itself: give --limit 2 or more`
              : file
                ? `--features ${file.file} has no row but the query's: make it again with more images (alexnet features --limit N, N of 2 or more)`
                : 'the held-out split has no image but the query itself: nothing to search',
          );
        }
        const queryName = a.image ?? `held-out image ${a.index}${files?.[a.index!] ? ` (${files[a.index!]})` : ''}`;
        const tiles: Captioned[] = [
          { image: tileOf(q.image, S), lines: ['query', q.label === null ? path.basename(a.image!) : nameOf(q.label), a.index !== undefined ? `#${a.index}` : ''], framed: true },
          ...neighbours.map((n, k) => ({ image: tileOf(n.image, S), lines: [`${k + 1}. ${nameOf(n.label)}`, `distance ${n.distance.toPrecision(3)}`, `#${n.index}`] })),
        ];
        const base = a.image !== undefined ? imageStem(a.image) : `heldout${a.index}${dataStem(a.data).slice(0, -1)}`;
        const out = await writePng(outFile(a, `neighbours-${layer}-${base}-step${s.step}.png`), await captionedTilesPng(tiles, a.columns ?? 9));
        const { dim } = extractor.layout;
        const where = file ? ` (the rows of ${file.file})` : '';
        say(`${out}: the ${neighbours.length} held-out images nearest to ${queryName} in ${layer} (${dim} values, ${extractor.layout.towers.length === 2 ? 'both towers' : 'tower 0'}; Euclidean), of ${searched} searched${where} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        say(`from ${s.description}`);
        for (const [k, n] of neighbours.entries()) say(`  ${k + 1}. held-out image ${n.index}: ${nameOf(n.label)}, distance ${n.distance.toPrecision(4)}${files?.[n.index] ? `, ${files[n.index]}` : ''}`);
        if (q.label !== null) say(`${neighbours.filter((n) => n.label === q.label).length} of ${neighbours.length} share the query's class (${nameOf(q.label)})`);
      } finally {
        extractor.destroy();
        await data.close();
      }
    });
  },
};

/** What `alexnet inspect` inspects: its sub-commands. */
export const inspectSubcommands = [kernelsCommand, activationsCommand, predictionsCommand, neighboursCommand] as const;

export const inspectCommand: CommandModule = {
  ...COMMAND_LIST['inspect'],
  builder: (y) =>
    y
      .command(kernelsCommand)
      .command(activationsCommand)
      .command(predictionsCommand)
      .command(neighboursCommand)
      .demandCommand(1, 'name what to inspect: kernels, activations, predictions or neighbours')
      .example('$0 inspect kernels --run runs/c10', "conv1's kernels of both towers and their colour scores")
      .example('$0 inspect kernels --model models/cifar10.safetensors', 'the same for the shipped CIFAR-10 model')
      .example('$0 inspect activations --run runs/c10 --image cat.jpg --layer conv2', "each tower's conv2 maps for cat.jpg")
      .example('$0 inspect neighbours --data cifar10 --index 3000', "the shipped model's 8 nearest test images to test image 3000 in fc7")
      .example('$0 inspect neighbours --data cifar10 --index 3000 --features fc7.npy', 'the same, searching the rows that alexnet features --out fc7.npy wrote: seconds instead of a pass over the test set')
      .example('$0 inspect kernels --coordinator 127.0.0.1:50070 --token-file runs/c10/token', 'the same, live from a running coordinator (the address and token file launch prints)'),
  handler: () => {},
};
