/**
 * Workers belong to one run at a time, and strangers cannot join it: a second coordinator is refused while
 * the first holds the lease (naming the run, not revealing its id), takes over only with --take-over, and is
 * let in once the first releases the workers or its lease lapses; Status and Peer.Hello never hand out the run
 * id that Step and Peer.Exchange require; a worker beyond loopback without credentials refuses to start unless
 * told --insecure; a coordinator started before its workers waits for them (--connect-timeout).
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import { PROTOCOL_VERSION, modelIdentity, protocol, unary, type PeerHello, type StatusReply } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource, UserError } from '@alexnet-mp/coordinator';
import { alexnet, startWorker } from './helpers.js';
import { reservedPort } from './ports.js';

const B = 4;
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

test('a second coordinator is refused while the first run holds the workers; --take-over, Release and a lapsed lease let it in', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B), '--lease', '10']), startWorker(t, 1, ['--max-batch', String(B), '--lease', '10'])]);
  const workers = [w0.address, w1.address] as const;
  const source = new SyntheticSource(tiny, 5);
  const make = (takeOver = false) => {
    const c = new Coordinator({ spec: tiny, workers, batch: B, seed: 5, hyper, source, takeOver, connectTimeoutMs: 5000 });
    t.teardown(() => c.close());
    return c;
  };
  const first = make();
  await first.start();
  await first.step(await source.batch(0, B));

  // held: refused, naming the holder by its start time only
  const second = make();
  const e = await t.throwsAsync(second.start());
  t.true(e instanceof UserError, String(e));
  t.regex(e!.message, /refused the handshake: this worker belongs to run \d{8}T\d{6}Z-… \(1 steps done; its last call was \d+ s ago\); its lease lapses 10 s after its last call; give the coordinator --take-over/);
  t.false(e!.message.includes(first.runId), 'the refusal does not reveal the run id');
  t.log(e!.message.split('\n')[0]);

  // Status and a stranger's Peer.Hello do not reveal it either
  const st = await first.clients[0]!.status();
  t.regex(st.run_id, /^\d{8}T\d{6}Z-…$/);
  t.not(st.run_id, first.runId);
  const peer = new (protocol().Peer)(w1.address, grpc.credentials.createInsecure());
  t.teardown(() => peer.close());
  const hello = await unary<PeerHello, PeerHello>(peer, 'Hello', { model: modelIdentity(tiny, PROTOCOL_VERSION), tower: 0, run_id: '' });
  t.is(hello.run_id, '', 'Peer.Hello tells a stranger no run id');

  // --take-over: the second run has the workers; the first fails at its next step
  const taker = make(true);
  await taker.start();
  const loss = (await taker.step(await source.batch(0, B))).loss;
  t.true(Number.isFinite(loss));
  await t.throwsAsync(first.step(await source.batch(1, B)), undefined, 'the run taken over cannot step any more');

  // Release: another run may start at once
  await taker.release();
  const afterRelease = make();
  await afterRelease.start();
  t.is((await afterRelease.step(await source.batch(0, B))).loss, loss, 'the same seed and batch give the same loss');

  // a lapsed lease (10 s without a call): let in without --take-over (10 s, not less: on a loaded machine the
  // refusal above must still find the first run's lease held)
  await new Promise((r) => setTimeout(r, 10_500));
  const afterLapse = make();
  await afterLapse.start();
  t.is((await afterLapse.step(await source.batch(0, B))).loss, loss);
});

test('a worker beyond loopback without --tls or a token refuses to start unless given --insecure', async (t) => {
  const refused = alexnet(['worker', '--tower', '0', '--host', '0.0.0.0', '--port', '0', '--backend', 'webasm']);
  const { code } = await refused.exited;
  t.is(code, 2, refused.output());
  t.regex(refused.output(), /--host 0\.0\.0\.0 without authentication: .*--token-file FILE.*--tls DIR.*or --insecure/);
  t.notRegex(refused.output(), /\n\s+at /, 'no stack trace');
  t.is(refused.output().trim().split('\n').length, 1, 'one line');

  const { p } = await startWorker(t, 0, ['--host', '0.0.0.0', '--insecure']);
  t.regex(p.output(), /warning: listening on 0\.0\.0\.0 without authentication \(--insecure\)/);
});

test("a coordinator's inspection service beyond loopback without --tls or a token is refused unless given --inspect-insecure", async (t) => {
  const refused = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'tiny', '--inspect-port', '0', '--inspect-host', '0.0.0.0']);
  const { code } = await refused.exited;
  t.is(code, 2, refused.output());
  t.regex(refused.output(), /--inspect-host 0\.0\.0\.0 without authentication: .*--token-file FILE.*--tls DIR.*or --inspect-insecure/);
  t.is(refused.output().trim().split('\n').length, 1, 'one line');

  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const accepted = alexnet(['coordinator', '--workers', `${w0.address},${w1.address}`, '--preset', 'tiny', '--batch', String(B), '--steps', '1', '--inspect-port', '0', '--inspect-host', '0.0.0.0', '--inspect-insecure']);
  t.is((await accepted.exited).code, 0, accepted.output());
  t.regex(accepted.output(), /warning: inspection served on 0\.0\.0\.0 without authentication \(--inspect-insecure\)/);
});

test('a dashboard beyond loopback is refused in one line unless given --ui-insecure, on every command that serves one', async (t) => {
  for (const args of [
    ['dashboard', 'training/cifar10', '--ui-port', '8080', '--ui-host', '0.0.0.0'],
    ['launch', '--preset', 'tiny', '--steps', '1', '--ui-port', '0', '--ui-host', '0.0.0.0'],
    ['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'tiny', '--ui-port', '0', '--ui-host', '0.0.0.0'],
  ]) {
    const refused = alexnet(args);
    const { code } = await refused.exited;
    t.is(code, 2, refused.output());
    t.regex(refused.output(), /--ui-host 0\.0\.0\.0: the dashboard has no authentication, .*(ssh -L 8080:127\.0\.0\.1:8080 THIS-HOST|ssh -L PORT:127\.0\.0\.1:PORT THIS-HOST, PORT the one printed)\), or give --ui-insecure/, args[0]);
    t.is(refused.output().trim().split('\n').length, 1, `${args[0]}: one line`);
    t.false(refused.output().includes('listening on'), `${args[0]}: no worker started`);
  }
  const accepted = alexnet(['dashboard', 'training/cifar10', '--ui-port', '0', '--ui-host', '0.0.0.0', '--ui-insecure']);
  t.teardown(() => void accepted.proc.kill('SIGKILL'));
  await accepted.waitFor(/alexnet dashboard: training\/cifar10 at http:\/\//);
  t.regex(accepted.output(), /warning: the dashboard at .* is served to every machine that reaches port \d+ here, without authentication/);
});

test('a coordinator started before its workers waits for them within --connect-timeout', async (t) => {
  // two free ports, known before the workers exist: from below the ephemeral range (test/ports.ts), where no
  // other process's listen(0) or connection takes them meanwhile
  const ports = [String(await reservedPort()), String(await reservedPort())];
  if (ports[0] === ports[1]) ports[1] = String(Number(ports[0]) + 1);
  const coord = alexnet(['coordinator', '--workers', ports.map((p) => `127.0.0.1:${p}`).join(','), '--connect-timeout', '180', '--steps', '2', '--batch', String(B), '--preset', 'tiny']);
  t.teardown(() => coord.proc.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 3000));
  t.is(coord.proc.exitCode, null, `the coordinator waits: ${coord.output()}`);
  const late = [0, 1].map((tower) => alexnet(['worker', '--tower', String(tower), '--port', ports[tower]!, '--backend', 'webasm', '--on-fallback', 'throw']));
  t.teardown(() => late.forEach((w) => w.proc.kill('SIGKILL')));
  const { code } = await coord.exited;
  t.is(code, 0, coord.output());
  t.regex(coord.output(), /"event":"done"/);
});

test('a flood of idle connections is capped and the silent ones are closed; the worker still answers', async (t) => {
  const { p, address } = await startWorker(t, 0);
  const pid = p.proc.pid!;
  const fds = async () => (await import('node:fs')).readdirSync(`/proc/${pid}/fd`).length;
  const before = await fds();
  const net = await import('node:net');
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const sockets: import('node:net').Socket[] = [];
  let closedByWorker = 0;
  for (let i = 0; i < 200; i++) {
    const s = net.connect(port, host);
    s.on('error', () => {});
    s.on('close', () => closedByWorker++);
    sockets.push(s);
  }
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  // the cap closes the extra connections as they arrive: wait until it has (well before the 10 s of silence)
  const capDeadline = Date.now() + 8000;
  while (closedByWorker < 200 - 64 - 2 && Date.now() < capDeadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 200));
  const during = await fds();
  t.log(`worker fds: ${before} before, ${during} with 200 silent connections open against it, ${closedByWorker} closed at once`);
  t.true(during - before <= 64 + 2, `at most 64 connections kept (${during - before} more fds)`);
  t.true(closedByWorker >= 200 - 64 - 2, `the rest closed at once (${closedByWorker})`);
  // the silent ones go after 10 s
  const silentDeadline = Date.now() + 15_000;
  while (closedByWorker < 200 && Date.now() < silentDeadline) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 200));
  const after = await fds();
  t.log(`worker fds ${after} after the silent ones' 10 s; ${closedByWorker} of 200 connections closed by the worker`);
  t.is(closedByWorker, 200, 'every silent connection closed');
  t.true(after <= before + 2, `fds back to ${before} (${after})`);
  // and the worker answers
  const client = new (protocol().Worker)(address, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const st = await unary<object, StatusReply>(client, 'Status', {}, { timeoutMs: 5000 });
  t.is(st.state, 'IDLE');
  t.regex(p.output(), /refused a connection from 127\.0\.0\.1:\d+: (more than 64 connections open|nothing sent within 10 s); closed/);
});

test('a coordinator whose workers another run took over (--take-over) says where to go on, not to restart a worker that is alive', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-taken-over-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  const first = alexnet(['coordinator', '--workers', `${w0.address},${w1.address}`, '--preset', 'tiny', '--batch', String(B), '--steps', '100000', '--checkpoint-every', '2', '--run-dir', runDir]);
  t.teardown(() => {
    if (first.proc.exitCode === null) first.proc.kill('SIGKILL');
  });
  await first.waitFor(/"event":"checkpoint"/, 120_000);
  const second = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: 5, hyper, source: new SyntheticSource(tiny, 5), takeOver: true });
  t.teardown(() => second.close());
  await second.start();
  t.is((await first.exited).code, 1, first.output());
  const line = first.stderr.find((l) => / was replaced by run /.test(l)) ?? '';
  t.regex(line, /: alexnet coordinator --resume \S+ continues from it on workers that are free \(these now serve the run that took them over\)$/, first.output());
  t.notRegex(line, /start the worker again/);
});
