/** `alexnet certs` (certs.ts) and the credentials options (security-options.ts): what they make and what they refuse. */
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadTlsIdentity } from '@alexnet-mp/worker';
import { identityFiles, makeCerts } from '../src/certs.js';
import { launchSecurity, securityFrom, tokenFrom, TOKEN_ENV } from '../src/cli/security-options.js';
import { UserError } from '../src/cli/errors.js';

function tmp(t: import('ava').ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-certs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a CA and one certificate per process: signed by the CA, for server and client, naming every host; keys readable by their owner only', async (t) => {
  const out = path.join(tmp(t), 'certs');
  const r = await makeCerts({ out, hosts: ['localhost', '127.0.0.1', '::1', 'gpu-a.example'], days: 30 });
  t.deepEqual(r.files.map((f) => f.name), ['coordinator', 'worker0', 'worker1']);
  const ca = new crypto.X509Certificate(fs.readFileSync(r.ca));
  t.true(ca.ca, 'the CA is a CA');
  for (const f of r.files) {
    const cert = new crypto.X509Certificate(fs.readFileSync(f.cert));
    t.false(cert.ca, `${f.name} is not a CA`);
    t.true(cert.checkIssued(ca) && cert.verify(ca.publicKey), `${f.name} is signed by the CA`);
    t.regex(cert.subject, new RegExp(`CN=${f.name}`));
    t.is(cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:gpu-a.example');
    t.deepEqual([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth');
    t.true(cert.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(f.key))));
    t.is(fs.statSync(f.key).mode & 0o777, 0o600, `${f.key} is private`);
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    t.true(days > 29 && days <= 30, `valid ${days.toFixed(1)} days`);
  }
  t.is(fs.statSync(r.caKey).mode & 0o777, 0o600);
  // each process's identity loads and checks
  t.is(loadTlsIdentity(identityFiles(out, 'worker1')).name, 'worker1');
});

test('existing files are not overwritten without force; more names can be signed by the same CA', async (t) => {
  const out = path.join(tmp(t), 'certs');
  await makeCerts({ out });
  const caBefore = fs.readFileSync(path.join(out, 'ca.pem'), 'utf8');
  await t.throwsAsync(makeCerts({ out }), { message: /ca\.pem, .* already exist: give --force to replace, or another --out/ });
  await makeCerts({ out, names: ['worker0b'], reuseCa: true });
  // a name added already: with --add-names the folder is the CA's, so the way out is other names, not another --out
  await t.throwsAsync(makeCerts({ out, names: ['worker0b'], reuseCa: true }), { message: /worker0b\.pem, .* already exist: give --force to replace, or other --names$/ });
  t.is(fs.readFileSync(path.join(out, 'ca.pem'), 'utf8'), caBefore, 'the CA is kept');
  t.is(loadTlsIdentity(identityFiles(out, 'worker0b')).name, 'worker0b');
  await makeCerts({ out, force: true });
  t.not(fs.readFileSync(path.join(out, 'ca.pem'), 'utf8'), caBefore, 'force makes a new CA');
  await t.throwsAsync(makeCerts({ out: path.join(out, 'x'), hosts: ['bad host'] }), { message: /host "bad host" is neither an IP address nor a DNS name/ });
  await t.throwsAsync(makeCerts({ out: path.join(out, 'x'), hosts: ['localhost', '10.0.0.256'] }), { message: 'host "10.0.0.256" is not an IPv4 address (four numbers 0-255 separated by dots)' });
  // a copy of the CA's certificate without its key (a machine's folder): --add-names points to the CA's folder, not to making a new CA
  const copy = path.join(tmp(t), 'machine');
  fs.mkdirSync(copy);
  fs.copyFileSync(path.join(out, 'ca.pem'), path.join(copy, 'ca.pem'));
  await t.throwsAsync(makeCerts({ out: copy, names: ['x1'], reuseCa: true }), { message: `--add-names signs with the CA in ${copy}, which has no ca-key.pem: give the folder that holds the cluster's ca-key.pem (where alexnet certs made the CA)` });
  await t.throwsAsync(makeCerts({ out: path.join(out, 'x'), names: ['../evil'] }), { message: /certificate name "\.\.\/evil"/ });
  await t.throwsAsync(makeCerts({ out: path.join(out, 'x'), hosts: [] }), { message: '--hosts names no host: give the DNS names and IP addresses the processes are reached at' });
  await t.throwsAsync(makeCerts({ out: path.join(out, 'x'), days: 0 }), { message: '--days 0: give an integer >= 1' });
  await t.throwsAsync(makeCerts({ out: path.join(out, 'ca.pem') }), { message: `--out ${path.join(out, 'ca.pem')} is a file: give a folder (created if missing)` });
  t.false(fs.existsSync(path.join(out, 'x')), 'nothing written when the options are wrong');
});

test('a certificate of another CA, a key of another certificate, a missing file: one clear message each', async (t) => {
  const dir = tmp(t);
  const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
  await Promise.all([makeCerts({ out: a }), makeCerts({ out: b })]);
  const wa = identityFiles(a, 'worker0');
  const wb = identityFiles(b, 'worker0');
  t.throws(() => loadTlsIdentity({ ...wa, cert: wb.cert, key: wb.key }), { message: new RegExp(`${wb.cert.replace(/[.]/g, '\\.')} \\(CN=worker0\\) is not signed by the CA in .*ca\\.pem`) });
  t.throws(() => loadTlsIdentity({ ...wa, key: identityFiles(a, 'worker1').key }), { message: /worker1-key\.pem is not the key of .*worker0\.pem/ });
  t.throws(() => loadTlsIdentity({ ...wa, ca: path.join(dir, 'nope.pem') }), { message: /cannot read the CA certificate .*nope\.pem: no such file or folder \(ENOENT\) \(make them with `alexnet certs --out DIR`\)/ });
  t.throws(() => loadTlsIdentity({ ...wa, cert: wa.key }), { message: /is not a PEM certificate/ });

  // the CLI's options: a directory per process name, explicit files override it; mistakes are UserErrors
  t.is(securityFrom({ tls: a }, 'coordinator', {})!.tls!.name, 'coordinator');
  t.is(securityFrom({ tls: a, 'tls-cert': identityFiles(a, 'worker1').cert, 'tls-key': identityFiles(a, 'worker1').key }, 'coordinator', {})!.tls!.name, 'worker1');
  t.throws(() => securityFrom({ tls: a }, 'worker7', {}), { instanceOf: UserError, message: /cannot read the certificate .*worker7\.pem/ });
  t.throws(() => securityFrom({ 'tls-ca': wa.ca }, 'worker0', {}), { instanceOf: UserError, message: /mutual TLS needs --tls DIR, or all three of --tls-ca, --tls-cert and --tls-key/ });
  t.is(securityFrom({}, 'worker0', {}), undefined, 'nothing given: plain gRPC');
});

test('the token comes from --token-file, --token or the environment; launch makes one when none is given', (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'token');
  fs.writeFileSync(file, 'a-token-of-the-cluster-1234\n', { mode: 0o600 });
  t.is(tokenFrom({ 'token-file': file }, {}), 'a-token-of-the-cluster-1234', 'first line, without its newline');
  t.is(tokenFrom({}, { [TOKEN_ENV]: 'from-the-environment-5678' }), 'from-the-environment-5678');
  t.is(tokenFrom({ token: 'given-on-the-command-line' }, { [TOKEN_ENV]: 'from-the-environment-5678' }), 'given-on-the-command-line', 'an option before the environment');
  t.is(tokenFrom({}, {}), undefined);
  t.throws(() => tokenFrom({ 'token-file': file, token: 'given-on-the-command-line' }, {}), { instanceOf: UserError, message: /--token-file or --token, not both/ });
  t.throws(() => tokenFrom({ 'token-file': path.join(dir, 'none') }, {}), { instanceOf: UserError, message: /cannot read the token file .*none: no such file or folder \(ENOENT\)$/ });
  t.throws(() => tokenFrom({}, { [TOKEN_ENV]: 'short' }), { instanceOf: UserError, message: /the token from ALEXNET_TOKEN has 5 characters/ });

  const random = launchSecurity({}, {});
  const again = launchSecurity({}, {});
  t.deepEqual(random.args, [], 'no TLS, and no token on the command line');
  t.true(random.env[TOKEN_ENV]!.length >= 16);
  t.not(random.env[TOKEN_ENV], again.env[TOKEN_ENV], 'a new token every launch');
  t.is(launchSecurity({ 'token-file': file }, {}).env[TOKEN_ENV], 'a-token-of-the-cluster-1234', "the user's token when given");
  t.throws(() => launchSecurity({ 'tls-ca': file }, {}), { instanceOf: UserError, message: /launch takes --tls DIR/ });
});
