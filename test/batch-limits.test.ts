/**
 * A batch too large for gRPC or for the machine's memory is one line and exit 2, before anything is
 * allocated: on the command line (launch, coordinator, worker --max-batch) and at a worker's Configure.
 */
import test from 'ava';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { MEMORY_SHARE, getPreset, largestBatchWithin, paper, stepBytes, tiny, towerStepMemory } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource, UserError, alexnetBin } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const run = (...args: string[]) => spawnSync(process.execPath, [alexnetBin, ...args], { encoding: 'utf8', timeout: 60_000 });

test('the step memory estimate grows with the batch from a fixed part (the parameters, momentum and gradients)', (t) => {
  for (const name of ['tiny', 'cifar', 'paper']) {
    const m = towerStepMemory(getPreset(name));
    t.true(m.perImage > 0 && m.fixed > 0, name);
    t.is(stepBytes(m, 10) - stepBytes(m, 9), m.perImage);
    t.is(largestBatchWithin(m, stepBytes(m, 37)), 37);
    t.is(largestBatchWithin(m, m.fixed - 1), 0);
  }
  // the paper preset: 3 x (parameters + biases) of a tower, float32; tower 0 holds half of the 56.8 M before fc8, and fc8's 4.1 M
  const params = towerStepMemory(paper).fixed / 12;
  t.true(params > 32.4e6 && params < 32.6e6, `about 32.5 M parameters in tower 0: ${params}`);
});

for (const [args, re] of [
  [['launch', '--batch', '1000000000', '--steps', '1'], /^alexnet: --batch 1000000000: a message of it would be 719\.9 GiB, more than gRPC's 2 GiB; preset tiny allows at most \d+\n$/],
  [['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--batch', '1000000000'], /^alexnet: --batch 1000000000: a message of it would be/],
  [['worker', '--tower', '0', '--max-batch', '100000000'], /^alexnet: --max-batch 100000000: a message of it would be 72\.0 GiB/],
] as const) {
  test(`a batch past gRPC's message limit is one line, exit 2: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr, re);
  });
}

test('launch refuses a batch whose two workers would not fit in this machine\'s memory, saying what fits', (t) => {
  const m = towerStepMemory(tiny);
  // twice what fits for two workers
  const batch = 2 * largestBatchWithin(m, (MEMORY_SHARE * os.totalmem()) / 2);
  const r = run('launch', '--batch', String(batch), '--steps', '1', '--backend', 'webasm');
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, new RegExp(`^alexnet: --batch ${batch}: a training step of preset tiny needs about [\\d.]+ GiB \\(2 workers of [\\d.]+ GiB each\\), more than 75% of this machine's [\\d.]+ GiB; at most about ${batch / 2} fits\\n$`));
});

test('a worker on the CPU refuses at Configure a batch its step could not hold in memory', async (t) => {
  const m = towerStepMemory(paper);
  const batch = 2 * largestBatchWithin(m, MEMORY_SHARE * os.totalmem());
  const args = ['--preset', 'paper', '--max-batch', String(batch)];
  const [w0, w1] = await Promise.all([startWorker(t, 0, args), startWorker(t, 1, args)]);
  const c = new Coordinator({ spec: paper, workers: [w0.address, w1.address], batch, seed: 1, hyper: { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 }, source: new SyntheticSource(paper, 1) });
  t.teardown(() => c.close());
  const e = await t.throwsAsync(c.start());
  t.true(e instanceof UserError, String(e));
  t.regex(e!.message, new RegExp(`could not be configured: batch ${batch}: a step of preset paper needs about [\\d.]+ GiB on tower \\d, more than 75% of this machine's [\\d.]+ GiB; at most about \\d+ fits`));
  t.log(e!.message.split('\n')[0]);
});
