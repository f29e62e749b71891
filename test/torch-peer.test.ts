/**
 * The benchmark's PyTorch peer (bench/peer/torch_alexnet.py through bench/peer/torch-peer.ts): where the
 * Python (`$ALEXNET_PYTHON`, else python3) imports torch, it builds the tiny preset with exactly the
 * parameter count of packages/core's model and trains a few steps on the CPU; where it cannot, the peer
 * says why in one line and times nothing (the script still parses its arguments and reads the spec).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { getPreset } from '@alexnet-mp/core';
import { runTorchPeer, torchPython, TORCH_PEER_SCRIPT } from '../bench/peer/torch-peer.js';

const python = torchPython();
const hasPython = spawnSync(python, ['--version']).status === 0;

(hasPython ? test : test.skip)(`the PyTorch peer trains the tiny preset on the CPU, or says why it cannot${hasPython ? '' : ` (skipped: no ${python} here)`}`, async (t) => {
  const outcome = await runTorchPeer({ spec: getPreset('tiny'), batch: 4, warmup: 1, iters: 2, device: 'cpu', timeoutMs: 120_000 });
  if (!outcome.ran) {
    t.regex(outcome.why, /^torch is not importable by \S+: /);
    return;
  }
  const r = outcome.result;
  t.is(r.stepMs.length, 2);
  t.true(r.imagesPerSec > 0 && Number.isFinite(r.firstLoss) && Number.isFinite(r.lastLoss));
  t.regex(r.description, /^PyTorch \S+ on cpu/);
});

(hasPython ? test : test.skip)(`the PyTorch peer script refuses a spec whose parameter count differs from packages/core's${hasPython ? '' : ` (skipped: no ${python} here)`}`, (t) => {
  const r = spawnSync(python, [TORCH_PEER_SCRIPT, '--batch', '2', '--device', 'cpu', '--expect-params', '1'], { input: JSON.stringify(getPreset('tiny')), encoding: 'utf8' });
  if (/^PEER_SKIP /m.test(r.stdout)) {
    t.is(r.status, 3);
    return;
  }
  t.not(r.status, 0);
  t.regex(r.stderr, /the model has 6364 parameters, the spec's count is 1/);
});
