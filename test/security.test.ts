/**
 * Authentication between real processes on loopback: mutual TLS with the
 * certificates of `alexnet certs`, the shared token, and `launch`'s random
 * token; strangers (no certificate, another CA's, plain gRPC, no token, a
 * wrong token) are refused, on the Worker and the Peer service, and logged.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { tiny } from '@alexnet-mp/core';
import { ExchangeStream, loadTlsIdentity, maxMessageBytes, protocol, randomToken, unary, type ExchangeRequest, type StatusReply } from '@alexnet-mp/worker';
import { identityFiles, makeCerts } from '@alexnet-mp/coordinator';
import { InspectClient } from '../packages/coordinator/src/inspect/client.js';
import { alexnet, startWorker } from './helpers.js';

const B = 4;
const limit = maxMessageBytes(tiny, B);

function tmpDir(t: ExecutionContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function coordinate(workers: string[], extra: string[]) {
  const p = alexnet(['coordinator', '--workers', workers.join(','), '--preset', 'tiny', '--steps', '2', '--batch', String(B), '--connect-timeout', '3', ...extra]);
  const { code } = await p.exited;
  return { code, err: p.stderr.join('\n'), out: p.stdout.join('\n') };
}

/** A call that must fail; its error. */
async function fails(t: ExecutionContext, what: string, call: Promise<unknown>): Promise<grpc.ServiceError> {
  const e = (await t.throwsAsync(call, undefined, `${what} was answered`)) as grpc.ServiceError;
  t.log(`${what}: ${grpc.status[e.code]}: ${e.details}`);
  return e;
}

const exchange = (run: string): ExchangeRequest => ({ run_id: run, step: 0, point: 'pool2', direction: 'FORWARD', from_tower: 0, tensor: { shape: [1], data: Buffer.alloc(4) } });

test.serial('mutual TLS: a run works; a client without a certificate, with another CA\'s, or without TLS is refused and logged', async (t) => {
  const dir = tmpDir(t, 'alexnet-tls-');
  const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
  await Promise.all([makeCerts({ out: a }), makeCerts({ out: b })]);
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--tls', a, '--max-batch', String(B)]), startWorker(t, 1, ['--tls', a, '--max-batch', String(B)])]);
  t.regex(w0.p.output(), /authentication: mutual TLS as worker0/);
  const addresses = [w0.address, w1.address];

  // the three processes with certificates of one CA: the coordinator's calls and the workers' exchanges over TLS
  const ok = await coordinate(addresses, ['--tls', a]);
  t.is(ok.code, 0, ok.err);
  t.regex(ok.out, /"event":"done"/);

  const file = (d: string, name: string, kind: 'ca' | 'cert' | 'key') => fs.readFileSync(identityFiles(d, name)[kind]);
  const caA = file(a, 'coordinator', 'ca');
  const { Worker, Peer } = protocol();
  const opts = { 'grpc.max_receive_message_length': limit, 'grpc.max_send_message_length': limit };
  const clients: grpc.Client[] = [];
  const client = (C: grpc.ServiceClientConstructor, address: string, creds: grpc.ChannelCredentials) => {
    const c = new C(address, creds, opts);
    clients.push(c);
    return c;
  };
  t.teardown(() => clients.forEach((c) => c.close()));
  const call = { timeoutMs: 5000 };
  // no client certificate (it trusts the server)
  await fails(t, 'Status without a client certificate', unary(client(Worker, w0.address, grpc.credentials.createSsl(caA)), 'Status', {}, call));
  await w0.p.waitFor(/refused a TLS connection from 127\.0\.0\.1:\d+: no client certificate/, 10_000);
  // a certificate of another CA (made by another `alexnet certs`), trusting this cluster's CA: refused by the server
  const stranger = grpc.credentials.createSsl(caA, file(b, 'worker0', 'key'), file(b, 'worker0', 'cert'));
  await fails(t, "Status with another CA's certificate", unary(client(Worker, w0.address, stranger), 'Status', {}, call));
  await w0.p.waitFor(/refused a TLS connection from 127\.0\.0\.1:\d+: a certificate not signed by this cluster's CA/, 10_000);
  // the Peer service is the same port: another CA's "worker 0" cannot push a tensor to worker 1
  await fails(t, "Peer.Exchange with another CA's certificate", unary(client(Peer, w1.address, stranger), 'Exchange', exchange('x'), call));
  await w1.p.waitFor(/refused a TLS connection from 127\.0\.0\.1:\d+: a certificate not signed by this cluster's CA/, 10_000);
  // nor open the exchange stream
  const streamed = await fails(t, "Peer.Stream with another CA's certificate", new ExchangeStream(client(Peer, w1.address, stranger)).send(exchange('x'), 5000, new AbortController().signal));
  t.is(streamed.code, grpc.status.UNAVAILABLE);
  // plain gRPC
  await fails(t, 'Status without TLS', unary(client(Worker, w0.address, grpc.credentials.createInsecure()), 'Status', {}, call));
  await w0.p.waitFor(/refused a TLS connection from 127\.0\.0\.1:\d+: not TLS/, 10_000);

  // coordinators that cannot join: one line each, saying what to look at
  const [otherCa, plain] = await Promise.all([coordinate(addresses, ['--tls', b]), coordinate(addresses, [])]);
  t.is(otherCa.code, 2, otherCa.err);
  // a certificate of another CA is said at once (no retry makes it work), not after --connect-timeout
  t.regex(otherCa.err, /worker 0 \(tower 0\) at 127\.0\.0\.1:\d+: the TLS handshake with it failed on a certificate \(UNAVAILABLE: [^)]*\): the certificates are not of one CA: give both sides certificates of the same alexnet certs run/);
  t.is(plain.code, 2, plain.err);
  t.regex(plain.err, /if it was started with --tls, give --tls here too/);
  for (const r of [otherCa, plain]) t.notRegex(r.err, /internal error|\n\s+at /);
  // a TLS coordinator and workers started without TLS: they answer, not in TLS, and that is what is said
  const [p0, p1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)]), startWorker(t, 1, ['--max-batch', String(B)])]);
  const tlsToPlain = await coordinate([p0.address, p1.address], ['--tls', a]);
  t.is(tlsToPlain.code, 2, tlsToPlain.err);
  t.regex(tlsToPlain.err, /worker 0 \(tower 0\) at \S+: a server answers at 127\.0\.0\.1:\d+ but not as this coordinator connects \(UNAVAILABLE: SSL routines: wrong version number\): it was started without --tls: give both sides --tls, or neither/);

  // launch --tls: all three processes with their own certificates, and launch's token
  const launched = alexnet(['launch', '--tls', a, '--steps', '3', '--batch', String(B), '--inspect-port', '0']);
  t.is((await launched.exited).code, 0, launched.output());
  // its inspection service asks for both: the coordinator's line names the TLS folder and the token
  t.regex(launched.output(), /\[coord\] alexnet coordinator: inspection service \(alexnet\.v1\.Coordinator\) at \S+: alexnet inspect kernels --coordinator \S+ --tls \S+ \(with this run's token: --token-file FILE or \$ALEXNET_TOKEN\)/);
  t.regex(launched.output(), /\[worker1\] alexnet worker 1: authentication: mutual TLS as worker1 and a shared token/);
  t.regex(launched.output(), /\[coord\] alexnet coordinator: authentication: mutual TLS as coordinator and a shared token/);
  t.regex(launched.output(), /"event":"done"/);

  // with a certificate of the CA the workers answer (and a worker's own certificate is a client certificate too)
  const member = client(Worker, w0.address, grpc.credentials.createSsl(caA, file(a, 'worker1', 'key'), file(a, 'worker1', 'cert')));
  const st = await unary<object, StatusReply>(member, 'Status', {}, call);
  t.is(st.state, 'READY', 'the refused connections left the worker as the run left it');
  t.is(st.steps_done, 2);

  // inspecting a live run with another CA's certificates: said as a certificate failure, not as a missing --tls
  const live = alexnet(['coordinator', '--workers', addresses.join(','), '--preset', 'tiny', '--steps', '100000', '--batch', String(B), '--tls', a, '--inspect-port', '0']);
  t.teardown(() => {
    if (live.proc.exitCode === null) live.proc.kill('SIGKILL');
  });
  const at = (await live.waitFor(/inspection service \(alexnet\.v1\.Coordinator\) at (\S+):/))[1]!;
  const wrongCa = alexnet(['inspect', 'kernels', '--coordinator', at, '--tls', b, '--out', path.join(dir, 'k.png')]);
  t.is((await wrongCa.exited).code, 2, wrongCa.output());
  t.regex(wrongCa.stderr.join('\n'), /^alexnet: the TLS handshake with the coordinator at \S+ failed on a certificate \(UNAVAILABLE: [^)]*\): the certificates are not of one CA/m);
  t.notRegex(wrongCa.output(), /leave --tls out|up to 10 s/, 'said at once, and not as a missing or extra --tls');
  live.proc.kill('SIGTERM');
  await live.exited;
});

test.serial('shared token: a run works; a call without the token or with a wrong one is refused (UNAUTHENTICATED) and logged with who and which call', async (t) => {
  const dir = tmpDir(t, 'alexnet-token-');
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, randomToken() + '\n', { mode: 0o600 });
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--token-file', tokenFile, '--max-batch', String(B)]), startWorker(t, 1, ['--token-file', tokenFile, '--max-batch', String(B)])]);
  t.regex(w0.p.output(), /authentication: a shared token/);
  const addresses = [w0.address, w1.address];

  const ok = await coordinate(addresses, ['--token-file', tokenFile]);
  t.is(ok.code, 0, ok.err);
  t.regex(ok.out, /"event":"done"/);

  const [none, wrong] = await Promise.all([coordinate(addresses, []), coordinate(addresses, ['--token', 'not-the-token-of-this-cluster'])]);
  t.is(none.code, 2, none.err);
  t.regex(none.err, /worker 0 \(tower 0\) at \S+ refused us: no token: this server takes calls with the shared token of its run only/);
  t.is(wrong.code, 2, wrong.err);
  t.regex(wrong.err, /refused us: wrong token/);
  t.regex(wrong.err, /^alexnet: warning: --token is visible to every user of this machine in the process list \(ps\): give --token-file FILE \(mode 600\) or \$ALEXNET_TOKEN instead$/m);
  for (const r of [none, wrong]) {
    t.notRegex(r.err, /internal error|\n\s+at /);
    t.false(r.out.includes('"event":"step"'), 'no step ran');
  }
  await w0.p.waitFor(/refused Worker\.Handshake from 127\.0\.0\.1:\d+: no token/, 10_000);
  await w0.p.waitFor(/refused Worker\.Handshake from 127\.0\.0\.1:\d+: wrong token/, 10_000);

  // the Peer service: a stranger cannot push a tensor into worker 1's mailbox
  const peer = new (protocol().Peer)(w1.address, grpc.credentials.createInsecure());
  t.teardown(() => peer.close());
  const e = await fails(t, 'Peer.Exchange without the token', unary(peer, 'Exchange', exchange('x')));
  t.is(e.code, grpc.status.UNAUTHENTICATED);
  await w1.p.waitFor(/refused Peer\.Exchange from 127\.0\.0\.1:\d+: no token/, 10_000);
  // nor open the exchange stream (the run above sent its tensors on it, with the token)
  const s = await fails(t, 'Peer.Stream without the token', new ExchangeStream(peer).send(exchange('x'), 30_000, new AbortController().signal));
  t.is(s.code, grpc.status.UNAUTHENTICATED);
  t.regex(s.details, /no token: this server takes calls with the shared token of its run only/);
  await w1.p.waitFor(/refused Peer\.Stream from 127\.0\.0\.1:\d+: no token/, 10_000);

  // a token too short to be one is a user error at start
  const short = alexnet(['worker', '--tower', '0', '--port', '0', '--token', 'abc']);
  t.is((await short.exited).code, 2);
  t.regex(short.stderr.join('\n'), /^alexnet: the token from --token has 3 characters: use at least 16/);
});

test.serial("launch gives its three processes a random token by default (in their environment, not on a command line): a stranger is refused; so is one without it at the coordinator's inspection service", async (t) => {
  const runDir = path.join(tmpDir(t, 'alexnet-launch-'), 'run');
  // a run long enough for everything below even on a slow machine; stopped with SIGTERM at the end
  const p = alexnet(['launch', '--steps', '100000', '--batch', String(B), '--inspect-port', '0', '--run-dir', runDir]);
  t.teardown(() => {
    if (p.proc.exitCode === null) p.proc.kill('SIGTERM');
  });
  const m = await p.waitFor(/\[worker0\] .* listening on (\S+)$/, 150_000);
  const pid = Number((await p.waitFor(/\[launch\] worker0: pid (\d+)/))[1]);
  const worker = new (protocol().Worker)(m[1]!, grpc.credentials.createInsecure());
  t.teardown(() => worker.close());
  const e = await fails(t, "Status on launch's worker 0 without its token", unary(worker, 'Status', {}, { timeoutMs: 5000 }));
  t.is(e.code, grpc.status.UNAUTHENTICATED);
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    // the run may be over already: the log lines below still tell
  }
  t.false(cmdline.includes('--token'), 'the token is not on the command line');

  // the inspection service asks for the same token; launch says where it wrote it (readable by this user only)
  const hint = await p.waitFor(/\[launch\] inspection service: (\S+) \(alexnet inspect .* --coordinator \S+ --token-file (\S+)\)/);
  const [address, tokenFile] = [hint[1]!, hint[2]!];
  t.is(tokenFile, path.join(runDir, 'token'));
  // the coordinator's own line says a token is needed too (launch gave it one in its environment)
  t.regex(p.output(), /inspection service \(alexnet\.v1\.Coordinator\) at \S+: alexnet inspect kernels --coordinator \S+ \(with this run's token: --token-file FILE or \$ALEXNET_TOKEN\)/);
  t.is(fs.statSync(tokenFile).mode & 0o777, 0o600);
  const inspect = (extra: string[]) => alexnet(['inspect', 'kernels', '--coordinator', address, '--out', path.join(runDir, 'k.png'), ...extra]);
  const [without, withToken] = [inspect([]), inspect(['--token-file', tokenFile])];
  t.is((await without.exited).code, 2, without.output());
  t.regex(without.stderr.join('\n'), /^alexnet: the coordinator at \S+ refused us: no token/);
  t.is((await withToken.exited).code, 0, withToken.output());
  t.true(fs.existsSync(path.join(runDir, 'k.png')));
  // ListWorkers, even with the token, gives the run id with its random part hidden (the whole id drives the workers)
  const client = new InspectClient(address, { token: fs.readFileSync(tokenFile, 'utf8').trim() });
  t.teardown(() => client.close());
  const runId = (JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { run_id: string }).run_id;
  const listed = await client.listWorkers(10_000);
  t.is(listed.run_id, runId.replace(/-[^-]+$/, '-…'));
  t.not(listed.run_id, runId);

  await p.waitFor(/"event":"step","step":1,/);
  p.proc.kill('SIGTERM');
  const { code } = await p.exited;
  t.is(code, 143, p.output());
  t.regex(p.output(), /\[worker0\] alexnet worker 0: authentication: a shared token/);
  t.regex(p.output(), /\[worker1\] alexnet worker 1: authentication: a shared token/);
  t.regex(p.output(), /\[worker0\] alexnet worker 0: refused Worker\.Status from 127\.0\.0\.1:\d+: no token/);
  // the workers' logs (RUN_DIR/worker0.log, a terminal others may see) name the run with its random part hidden
  const workerLines = p.output().split('\n').filter((l) => l.startsWith('[worker'));
  t.true(workerLines.some((l) => l.includes(`configured for run ${runId.replace(/-[^-]+$/, '-…')}`)), workerLines.join('\n'));
  t.false(workerLines.some((l) => l.includes(runId)), 'no worker line has the whole run id');
  t.regex(p.output(), /\[coord\] alexnet coordinator: refused Coordinator\.ListWorkers from 127\.0\.0\.1:\d+: no token/);
});

/**
 * A root CA, an intermediate CA it signed, and a leaf for localhost signed by the intermediate (ECDSA P-256, with
 * openssl): the files an organisation's PKI hands out; and a certificate signed by that leaf (no CA), with its chain.
 * Null where openssl is missing.
 */
function intermediateChain(dir: string): { root: string; intermediate: string; leaf: string; chain: string; key: string; bundle: string; viaLeaf: string; viaLeafKey: string } | null {
  const sh = (script: string) => spawnSync('/bin/sh', ['-c', script], { cwd: dir, encoding: 'utf8' });
  if (sh('openssl version').status !== 0) return null;
  const ca = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
  const leaf = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n';
  fs.writeFileSync(path.join(dir, 'ca.ext'), ca);
  fs.writeFileSync(path.join(dir, 'leaf.ext'), leaf);
  const key = (name: string) => `openssl ecparam -name prime256v1 -genkey -noout -out ${name}.key`;
  const r = sh(
    [
      key('root'),
      `openssl req -x509 -new -key root.key -out root.pem -days 2 -subj /CN=test-root -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign`,
      key('int'),
      'openssl req -new -key int.key -out int.csr -subj /CN=test-intermediate',
      'openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -out int.pem -days 2 -extfile ca.ext',
      key('leaf'),
      'openssl req -new -key leaf.key -out leaf.csr -subj /CN=test-leaf',
      'openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext',
      'cat leaf.pem int.pem > chain.pem',
      key('via-leaf'),
      'openssl req -new -key via-leaf.key -out via-leaf.csr -subj /CN=test-via-leaf',
      'openssl x509 -req -in via-leaf.csr -CA leaf.pem -CAkey leaf.key -CAcreateserial -out via-leaf-only.pem -days 2 -extfile leaf.ext',
      'cat via-leaf-only.pem leaf.pem int.pem > via-leaf.pem',
      'cat int.pem root.pem > bundle.pem',
    ].join(' && '),
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  const f = (n: string) => path.join(dir, n);
  return { root: f('root.pem'), intermediate: f('int.pem'), leaf: f('leaf.pem'), chain: f('chain.pem'), key: f('leaf.key'), bundle: f('bundle.pem'), viaLeaf: f('via-leaf.pem'), viaLeafKey: f('via-leaf.key') };
}

test.serial('certificates signed by an intermediate CA: a chain file, or a CA bundle, is taken, and a run trains over TLS with it', async (t) => {
  const dir = tmpDir(t, 'alexnet-chain-');
  const pki = intermediateChain(dir);
  if (!pki) {
    t.log('no openssl here: the chain is not tested');
    t.pass();
    return;
  }
  // the leaf followed by its intermediate, trusting the root; or the leaf alone, trusting a bundle of both CAs
  t.is(loadTlsIdentity({ ca: pki.root, cert: pki.chain, key: pki.key }).name, 'test-leaf');
  t.is(loadTlsIdentity({ ca: pki.bundle, cert: pki.leaf, key: pki.key }).name, 'test-leaf');
  // the leaf alone, trusting the root alone: its chain is incomplete, said so
  t.throws(() => loadTlsIdentity({ ca: pki.root, cert: pki.leaf, key: pki.key }), { message: /leaf\.pem \(CN=test-leaf\) is not signed by the CA in .*root\.pem \(CN=test-root\)$/ });
  // a chain through a certificate that is no CA (a leaf signing another): refused, as TLS would
  t.throws(() => loadTlsIdentity({ ca: pki.root, cert: pki.viaLeaf, key: pki.viaLeafKey }), { message: /via-leaf\.pem \(CN=test-via-leaf\) is not signed by the CA in .*root\.pem/ });

  const tls = ['--tls-ca', pki.root, '--tls-cert', pki.chain, '--tls-key', pki.key, '--max-batch', String(B)];
  const [w0, w1] = await Promise.all([startWorker(t, 0, tls), startWorker(t, 1, tls)]);
  t.regex(w0.p.output(), /authentication: mutual TLS as test-leaf/);
  const ok = await coordinate([w0.address, w1.address], tls.slice(0, 6));
  t.is(ok.code, 0, ok.err);
  t.regex(ok.out, /"event":"done"/);
});
