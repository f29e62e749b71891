/**
 * `npm run bench -- --backend webgpu` (the GPU comparison bench/gpu-bench.sh runs) end to end on the
 * tiny preset: alexnet-mp in one process and in two workers, the TensorFlow.js WebGPU peer and the
 * PyTorch peer (or the line saying why it did not run) in one run, each ratio theirs. Needs a WebGPU
 * adapter (`npm test`'s webgpu half gives it Mesa's lavapipe); skipped, saying why, where none answers.
 * The numbers are not judged here, only that each part ran what it says.
 */
import test from 'ava';
import { whyNoTfjsWebGPU } from '../bench/peer/tfjs-webgpu.js';
import { runBench } from './helpers.js';

const why = await whyNoTfjsWebGPU();

/** `npm run bench -- ARGS --json`'s JSON line and exit status. */
async function bench(args: string[]): Promise<{ code: number | null; json: Record<string, unknown> }> {
  const r = await runBench(args);
  if (!r.json[0]) throw new Error(`bench ${args.join(' ')}: ${r.signal ?? `exit ${r.code}`}, no JSON\n${r.err}`);
  return { code: r.code, json: r.json[0] };
}

const title = 'npm run bench -- --backend webgpu: one process, two workers, the TensorFlow.js WebGPU and PyTorch peers in one run, each ratio theirs';
(why === null ? test : test.skip)(why === null ? title : `${title} (skipped: ${why})`, async (t) => {
  const { code, json: r } = await bench(['--backend', 'webgpu', '--preset', 'tiny', '--batch', '4', '--iters', '2', '--warmup', '1']);
  t.is(code, 0, JSON.stringify({ one: r.oneProcessError, two: r.twoWorkersError, peers: r.peers }));
  t.is(r.backend, 'webgpu');
  t.deepEqual(r.kernelModes, ['webgpu']);
  t.true((r.launchesPerStep as number) > 0, 'kernel launches counted');
  const ours = r.imagesPerSec as number;
  const two = r.twoWorkers as { imagesPerSec: number; crossingBytesPerStep: number };
  t.true(ours > 0 && two.imagesPerSec > 0 && two.crossingBytesPerStep > 0);
  const peers = r.peers as { name: string; ran: boolean; why?: string; imagesPerSec?: number; ratio?: number; ratioTwoWorkers?: number; description?: string }[];
  t.deepEqual(peers.map((p) => p.name), ['tfjs-webgpu', 'torch'], 'the default peers on webgpu');
  const tfjs = peers[0]!;
  t.true(tfjs.ran);
  t.regex(tfjs.description!, /^TensorFlow\.js 4\.22\.\d+ WebGPU backend .*no fallback kernels/);
  t.true(Math.abs(tfjs.ratio! - ours / tfjs.imagesPerSec!) < 1e-9);
  t.true(Math.abs(tfjs.ratioTwoWorkers! - two.imagesPerSec / tfjs.imagesPerSec!) < 1e-9);
  t.is(r.ratio, tfjs.ratio, 'the top-level ratio is the TensorFlow.js peer\'s');
  const torch = peers[1]!;
  if (torch.ran) t.true(torch.imagesPerSec! > 0 && Math.abs(torch.ratio! - ours / torch.imagesPerSec!) < 1e-9);
  else t.regex(torch.why!, /torch is not importable|no \S+ on this machine/);
});
