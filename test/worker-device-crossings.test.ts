/**
 * Workers on webgpu keep their crossings on the device (packages/worker's crossing-tensors.ts): a segment's
 * input is joined, an input gradient sliced and this tower's output gradient summed by kernels, so the bytes
 * that go between host and GPU in a step are what crosses to the peer and back, the images and the loss.
 * Two workers in this process (one GPU device shared, as two towers of the one-process trainer share it),
 * whole batches and 2 micro-batches, against the one-process trainer on the same adapter: losses and weights.
 * webgpu only (ALEXNET_TEST_BACKEND=webgpu; the software adapter of scripts/lavapipe.sh in `npm test`).
 */
import test from 'ava';
import { GroupedTrainer, paper, scaledError, tiny, type SgdHyper } from '@alexnet-mp/core';
import { inputNormalisation, normaliseImages, startWorker, type RunningWorker } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';

const backend = process.env.ALEXNET_TEST_BACKEND;
const webgpu = backend === 'webgpu' ? test.serial : test.skip;

const B = 8;
const STEPS = 3;
const SEED = 7;
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.05, decayBiases: true };

webgpu('workers on webgpu move between host and GPU only what crosses, the images and the loss, and train as one process does', async (t) => {
  const ws: RunningWorker[] = [];
  for (const tower of [0, 1] as const) ws.push(await startWorker({ spec: tiny, tower, backend: 'webgpu', port: 0, maxBatch: B }));
  t.teardown(() => Promise.all(ws.map((w) => w.close())));
  const devices = ws.map((w) => w.worker.device);
  t.true(devices.every((d) => d.resident));

  const source = new SyntheticSource(tiny, SEED);
  const oracle = await GroupedTrainer.create({ spec: tiny, backend: 'webgpu', batch: B, seed: SEED, hyper, fallback: { onFallback: 'throw' } });
  t.teardown(() => oracle.destroy());
  const oracleLosses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const b = await source.batch(s, B);
    oracleLosses.push((await oracle.trainStep({ images: normaliseImages(b.images, inputNormalisation(tiny)), labels: Float32Array.from(b.labels) })).loss);
  }
  const oracleParams = await oracle.syncParams();

  const imageBytes = tiny.inputChannels * tiny.inputSize * tiny.inputSize * B * 4;
  const logitBytes = tiny.classes * B * 4;
  for (const n of [1, 2]) {
    const c = new Coordinator({ spec: tiny, workers: [ws[0]!.address, ws[1]!.address], batch: B, seed: SEED, hyper, source, microBatches: n });
    await c.start();
    for (let s = 0; s < STEPS; s++) {
      const before = devices.map((d) => [d.readbackBytes, d.uploadBytes]);
      const m = await c.step(await source.batch(s, B));
      const rel = Math.abs(m.loss - oracleLosses[s]!) / Math.abs(oracleLosses[s]!);
      // whole batches add in the one-process trainer's order: the same bits
      if (n === 1) t.is(m.loss, oracleLosses[s]!, `N=1, step ${s}: the loss bit for bit`);
      else t.true(rel < 1e-5, `N=${n}, step ${s}: loss ${m.loss} vs ${oracleLosses[s]}`);
      // the first step of a run also puts the parameters (Configure's) on the device
      for (const tower of s === 0 ? [] : ([0, 1] as const)) {
        const w = m.workers.find((x) => x.tower === tower)!;
        const read = devices[tower]!.readbackBytes - before[tower]![0]!;
        const uploaded = devices[tower]!.uploadBytes - before[tower]![1]!;
        // tower 0 also reads back the losses and the logits, and in micro-batches the logits' gradient, which it
        // scales on the host and uploads again
        const lossBytes = tower === 0 ? B * 4 + logitBytes + (n > 1 ? logitBytes : 0) : 0;
        t.is(read, w.sent_bytes + lossBytes, `N=${n}, step ${s}, tower ${tower}: bytes read back = bytes sent${tower === 0 ? ' + the loss' : ''}`);
        t.is(uploaded, w.received_bytes + imageBytes + (tower === 0 && n > 1 ? logitBytes : 0), `N=${n}, step ${s}, tower ${tower}: bytes uploaded = bytes received + the images`);
      }
    }
    let worst = 0;
    let where = '';
    for (const tower of [0, 1] as const) {
      const remote = await c.clients[tower].parameters(true);
      for (const [name, lp] of oracleParams[tower]) {
        for (const k of ['w', 'b', 'vw', 'vb'] as const) {
          const e = scaledError(remote.get(name)![k]!, lp[k]);
          if (e > worst) [worst, where] = [e, `tower ${tower} ${name}.${k}`];
        }
      }
    }
    if (n === 1) t.is(worst, 0, `N=1: every weight and momentum bit for bit (${where})`);
    else t.true(worst < 1e-5, `N=${n}: ${where}: a difference of ${worst.toExponential(2)} of the tensor's scale`);
    // an evaluation between steps (its crossings in the run's Tower too): the one-process trainer's logits
    const e = await c.evaluateBatch(await source.batch(STEPS, B));
    const want = await oracle.predict(normaliseImages((await source.batch(STEPS, B)).images, inputNormalisation(tiny)), B);
    t.true(scaledError(e.logits, want) < 1e-5, `N=${n}: evaluation logits differ by ${scaledError(e.logits, want).toExponential(2)} of their scale`);
    await c.release();
    c.close();
  }
});

webgpu('paper preset, batch 2: a worker moves between host and GPU only what crosses, the images and the loss (fc6 past 2^24 floats stays on the device)', async (t) => {
  const B = 2;
  const ws: RunningWorker[] = [];
  for (const tower of [0, 1] as const) ws.push(await startWorker({ spec: paper, tower, backend: 'webgpu', port: 0, maxBatch: B }));
  t.teardown(() => Promise.all(ws.map((w) => w.close())));
  const devices = ws.map((w) => w.worker.device);
  const source = new SyntheticSource(paper, SEED);
  const c = new Coordinator({ spec: paper, workers: [ws[0]!.address, ws[1]!.address], batch: B, seed: SEED, hyper, source, microBatches: 1 });
  t.teardown(() => c.close());
  await c.start();
  // the first step also puts the parameters on the device
  await c.step(await source.batch(0, B));
  const before = devices.map((d) => [d.readbackBytes, d.uploadBytes]);
  const m = await c.step(await source.batch(1, B));
  t.true(Number.isFinite(m.loss));
  const imageBytes = paper.inputChannels * paper.inputSize * paper.inputSize * B * 4;
  for (const tower of [0, 1] as const) {
    const w = m.workers.find((x) => x.tower === tower)!;
    t.is(devices[tower]!.readbackBytes - before[tower]![0]!, w.sent_bytes + (tower === 0 ? B * 4 + paper.classes * B * 4 : 0), `tower ${tower}: bytes read back = bytes sent${tower === 0 ? ' + the loss' : ''}`);
    t.is(devices[tower]!.uploadBytes - before[tower]![1]!, w.received_bytes + imageBytes, `tower ${tower}: bytes uploaded = bytes received + the images`);
  }
  await c.release();
});
