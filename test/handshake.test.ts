/** The coordinator refuses workers that do not belong to its run, and says what differs. */
import test from 'ava';
import net from 'node:net';
import { alexnet, startWorker } from './helpers.js';

async function coordinate(workers: string[], extra: string[] = []) {
  const p = alexnet(['coordinator', '--workers', workers.join(','), '--preset', 'tiny', '--steps', '1', '--batch', '4', '--connect-timeout', '20', ...extra]);
  const { code } = await p.exited;
  return { code, err: p.stderr.join('\n'), out: p.stdout.join('\n') };
}

test('workers of another preset, another protocol version or in the wrong order are refused with a clear message', async (t) => {
  const [ok0, cifar1, v2tower1, ok1] = await Promise.all([
    startWorker(t, 0),
    startWorker(t, 1, ['--preset', 'cifar']),
    startWorker(t, 1, ['--protocol-version', '2']),
    startWorker(t, 1),
  ]);

  const preset = await coordinate([ok0.address, cifar1.address]);
  t.is(preset.code, 2, preset.err);
  t.regex(preset.err, new RegExp(`worker 1 \\(tower 1\\) at ${cifar1.address} refused the handshake: preset differs \\(coordinator: tiny, worker: cifar\\)`));

  const version = await coordinate([ok0.address, v2tower1.address]);
  t.is(version.code, 2, version.err);
  t.regex(version.err, /refused the handshake: protocol version differs \(coordinator speaks alexnet\.v1, worker alexnet\.v2\)/);

  const swapped = await coordinate([ok1.address, ok0.address]);
  t.is(swapped.code, 2, swapped.err);
  t.regex(swapped.err, /worker 0 \(tower 0\) at \S+ refused the handshake: tower differs \(the coordinator expects tower 0 at this address, this worker is tower 1: list the tower 0 worker first in --workers, or start this one with --tower 0 if the other is tower 1 too\)/);
  t.regex(swapped.err, /and worker 1 \(tower 1\) at \S+ refused the handshake: tower differs \(the coordinator expects tower 1 at this address, this worker is tower 0/);

  // a coordinator of another protocol version is refused the same way
  const oldCoordinator = await coordinate([ok0.address, ok1.address], ['--protocol-version', '0']);
  t.is(oldCoordinator.code, 2, oldCoordinator.err);
  t.regex(oldCoordinator.err, /protocol version differs \(coordinator speaks alexnet\.v0, worker alexnet\.v1\)/);

  for (const r of [preset, version, swapped, oldCoordinator]) {
    t.notRegex(r.err, /internal error|\n\s+at /, 'one clear line, no stack trace');
    t.false(r.out.includes('"event":"step"'), 'no step ran');
  }
  // the workers that were refused are still up and serve a matching run
  const good = await coordinate([ok0.address, ok1.address]);
  t.is(good.code, 0, good.err);
  t.regex(good.out, /"event":"done"/);
  // the done line gives each worker's exchange waited for and hidden behind compute, both on stderr and in the JSON line
  t.regex(good.err, /waiting on the exchange \d+% \/ \d+% of the workers' step time \(\d+% \/ \d+% more hidden behind compute\)/);
  const done = JSON.parse(good.out.split('\n').find((l) => l.includes('"event":"done"'))!) as { exchange_share: number[]; exchange_hidden_share: number[] };
  t.is(done.exchange_hidden_share.length, 2);
  for (const [i, h] of done.exchange_hidden_share.entries()) t.true(h > 0 && h + done.exchange_share[i]! <= 1, `worker ${i}: hidden ${h}, waited ${done.exchange_share[i]}`);
  // the worker logged why it refused
  await cifar1.p.waitFor(/refused handshake for run \S+: preset differs/);
});

test('a user mistake on the command line is one line, no stack trace', async (t) => {
  const silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const cases: [string[], RegExp][] = [
    [['coordinator', '--workers', '127.0.0.1:1'], /--workers needs exactly two addresses/],
    [['coordinator', '--workers', '127.0.0.1:1,localhost'], /"localhost" is not HOST:PORT/],
    [['worker', '--tower', '0', '--peer', 'nowhere'], /--peer "nowhere" is not HOST:PORT/],
    [['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--connect-timeout', '1'], /no worker answered at 127\.0\.0\.1:[12] in [1-9]\d*\.\d s \(--connect-timeout 1;/],
    // a name that does not resolve is said as such, not "start it"
    [['coordinator', '--workers', 'no-such-host.invalid:5000,127.0.0.1:2', '--connect-timeout', '5'], /no worker answered at no-such-host\.invalid:5000 in \d+\.\d s \(--connect-timeout 5; UNAVAILABLE: Name resolution failed[^)]*\): the host name does not resolve here; check the address in --workers/],
    // a port that accepts connections and never answers (a stopped worker): said as such
    [['coordinator', '--workers', `127.0.0.1:${(silent.address() as net.AddressInfo).port},127.0.0.1:2`, '--connect-timeout', '1'], /nothing answered at 127\.0\.0\.1:\d+ in [1-9]\d*\.\d s \(--connect-timeout 1; DEADLINE_EXCEEDED[^)]*\): a process there accepts connections but does not answer \(a stopped or hung worker\?\)/],
  ];
  await Promise.all(
    cases.map(async ([args, re]) => {
      const p = alexnet(args);
      const { code } = await p.exited;
      t.is(code, 2, p.output());
      t.regex(p.stderr.join('\n'), re);
      t.notRegex(p.stderr.join('\n'), /internal error|\n\s+at /);
    }),
  );
});
