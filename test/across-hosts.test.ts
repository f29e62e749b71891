/**
 * Across hosts (issue 6): the coordinator and the two workers in three network namespaces joined by a bridge
 * (veth pairs, as root, as CI runs), each worker listening on its own namespace's address, 10 ms of latency
 * added on every interface's way out (`tc netem`: 20 ms a round trip). The tiny preset trains a few steps and
 * every loss equals the loopback run's.
 *
 * Where the kernel has no netem (sch_netem not built, as on this project's VM), the latency comes from a
 * relay in each worker's namespace that holds every byte 10 ms each way (test/fixtures/delay-relay.ts); the
 * test says which it used.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from '@alexnet-mp/core';
import { alexnet, type Proc } from './helpers.js';
import { addNetem, startRelay, threeHosts } from '../bench/netns.js';

const STEPS = 6;
const run = ['--preset', 'tiny', '--batch', '8', '--steps', String(STEPS)];
const DELAY_MS = 10;
const PORT = 50051;
const RELAY_PORT = 50052;

function killOnTeardown(t: ExecutionContext, p: Proc): void {
  t.teardown(async () => {
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      p.proc.kill('SIGKILL');
      await p.exited;
    }
  });
}

interface StepEvent {
  event: string;
  step: number;
  loss: number;
  ms: number;
}
const steps = (dir: string): StepEvent[] =>
  fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as StepEvent).filter((e) => e.event === 'step');

test('three processes in three network namespaces with latency train the tiny preset to the same losses as on loopback', async (t) => {
  if (process.getuid?.() !== 0) {
    t.fail('this test makes network namespaces and needs root (CI runs as root)');
    return;
  }
  const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-hosts-')));
  t.teardown(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const [loopDir, nsDir] = dirs as [string, string];

  // ---- loopback
  const loop = alexnet(['launch', ...run, '--backend', 'webasm', '--max-restarts', '0', '--run-dir', loopDir]);
  killOnTeardown(t, loop);
  t.is((await loop.exited).code, 0, loop.output());

  // ---- three hosts
  let hosts;
  try {
    hosts = threeHosts((f) => t.teardown(f));
  } catch (e) {
    t.fail(`cannot make network namespaces here (ip netns, veth, bridge): ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message)}`);
    return;
  }
  const { c, w0, w1 } = hosts;
  const netem = addNetem([c, w0, w1], DELAY_MS);
  // workers reachable beyond loopback take calls with the run's token only (without one they refuse to start)
  const token = ['--token', 'across-hosts-test-token-0123456789'];
  const workers = [w0, w1].map((h, tower) => {
    const p = alexnet(['worker', '--tower', String(tower), '--host', h.address, '--port', String(PORT), '--backend', 'webasm', '--max-batch', '8', ...token], { netns: h.ns });
    killOnTeardown(t, p);
    return p;
  });
  for (const [tower, p] of workers.entries()) t.regex((await p.waitFor(/listening on (\S+)$/, 150_000))[1]!, new RegExp(`^${[w0, w1][tower]!.address.replace(/\./g, '\\.')}:${PORT}$`));
  let addresses = [w0, w1].map((h) => `${h.address}:${PORT}`);
  if (!netem) {
    // every byte to a worker (from the coordinator and from its peer) goes through its relay, 10 ms each way
    await Promise.all([w0, w1].map((h) => startRelay(h, RELAY_PORT, PORT, DELAY_MS, (f) => t.teardown(f))));
    addresses = [w0, w1].map((h) => `${h.address}:${RELAY_PORT}`);
  }
  t.log(netem ? `latency: tc netem delay ${DELAY_MS}ms on every interface` : `latency: this kernel has no netem; a relay holds every byte ${DELAY_MS} ms each way`);
  // the workers are not on the coordinator's loopback: only their namespace addresses reach them
  const coord = alexnet(['coordinator', '--workers', addresses.join(','), ...run, '--max-restarts', '0', '--run-dir', nsDir, ...token], { netns: c.ns });
  killOnTeardown(t, coord);
  t.is((await coord.exited).code, 0, coord.output());

  const a = steps(loopDir);
  const b = steps(nsDir);
  t.is(b.length, STEPS);
  t.deepEqual(
    b.map((e) => [e.step, e.loss]),
    a.map((e) => [e.step, e.loss]),
    'every loss equals the loopback run',
  );
  // the latency was there: 8 exchanges a step, one after another, each at least a round trip (a floor that no
  // load on the machine lowers; the loopback run's steps, timed earlier, are not compared with)
  const [ml, mn] = [median(a.slice(1).map((e) => e.ms)), median(b.slice(1).map((e) => e.ms))];
  t.log(`median step: ${ml.toFixed(0)} ms on loopback, ${mn.toFixed(0)} ms across the namespaces`);
  t.true(mn >= 4 * 2 * DELAY_MS, `the steps took the latency: median ${mn.toFixed(0)} ms, at least ${4 * 2 * DELAY_MS}`);
});
