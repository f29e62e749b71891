/**
 * A local certificate authority and one certificate per process of a test
 * cluster (`alexnet certs`), made with @peculiar/x509 on Node's WebCrypto:
 * ECDSA P-256 keys, SHA-256 signatures, no external binary.
 *
 * One certificate per process (coordinator, worker0, worker1 by default)
 * rather than one shared: each private key only has to be on its own
 * machine, and the logs name the caller. Every certificate is for both
 * server and client authentication (a worker is the server of the
 * coordinator and of its peer, and the client of its peer) and names every
 * host of the cluster (--hosts), so any process may run on any of them.
 * Trust is the CA: any certificate it signed may make any call.
 */
import { webcrypto } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type * as X509 from '@peculiar/x509';
import { fileError, makeDir } from '@alexnet-mp/core';

type CryptoKey = webcrypto.CryptoKey;

let lib: Promise<typeof X509> | null = null;
/** @peculiar/x509, loaded when certificates are made (not by every process that imports this module). */
function x509lib(): Promise<typeof X509> {
  lib ??= (async () => {
    await import('reflect-metadata'); // its dependency injection (tsyringe) needs the Reflect metadata polyfill
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return lib;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export const DEFAULT_CERT_NAMES = ['coordinator', 'worker0', 'worker1'] as const;
export const DEFAULT_CERT_HOSTS = ['localhost', '127.0.0.1', '::1'] as const;

export interface CertsOptions {
  /** Directory to write into (created; existing files are not overwritten unless `force`). */
  readonly out: string;
  /** DNS names and IP addresses every certificate is valid for. */
  readonly hosts?: readonly string[];
  /** One certificate per name: NAME.pem and NAME-key.pem. */
  readonly names?: readonly string[];
  /** Validity in days, from now (a minute back for clock skew). */
  readonly days?: number;
  readonly force?: boolean;
  /** Sign with the CA already in `out` (ca.pem, ca-key.pem) instead of making one: more names for the same cluster. */
  readonly reuseCa?: boolean;
}

export interface CertsResult {
  readonly ca: string;
  readonly caKey: string;
  readonly files: readonly { name: string; cert: string; key: string }[];
}

/** The files of a process's identity in a directory made by `alexnet certs`. */
export const identityFiles = (dir: string, name: string) => ({ ca: path.join(dir, 'ca.pem'), cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}-key.pem`) });

const pemKey = async (x509: typeof X509, k: CryptoKey) => x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', k), 'PRIVATE KEY');
const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');
const keyPair = async () => (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;

/** A name for the CN and the file names: letters, digits, '.', '_', '-'. */
export function checkCertName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new Error(`certificate name "${name}": use 1..64 letters, digits, '.', '_' or '-'`);
  return name;
}

export async function makeCerts(o: CertsOptions): Promise<CertsResult> {
  const x509 = await x509lib();
  // each host once: a name given twice would be listed twice in every certificate
  const hosts = [...new Set(o.hosts ?? DEFAULT_CERT_HOSTS)];
  const names = [...new Set((o.names ?? DEFAULT_CERT_NAMES).map(checkCertName))];
  if (names.length === 0) throw new Error('no certificate names');
  // NAME.pem and NAME-key.pem of every name, and the CA's ca.pem and ca-key.pem: no file may be two of them
  if (names.includes('ca') || names.includes('ca-key')) throw new Error(`"${names.includes('ca') ? 'ca' : 'ca-key'}" is a CA file's name (ca.pem, ca-key.pem): choose another certificate name`);
  const keyOfAnother = names.find((n) => n.endsWith('-key') && names.includes(n.slice(0, -'-key'.length)));
  if (keyOfAnother) throw new Error(`"${keyOfAnother}" is the name of ${keyOfAnother.slice(0, -'-key'.length)}'s key file (${keyOfAnother}.pem): choose another certificate name`);
  for (const h of hosts) {
    if (!(net.isIP(h) || /^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(h))) throw new Error(`host "${h}" is neither an IP address nor a DNS name`);
    // digits and dots only is a mistyped address, not a name (no DNS name ends in a number part; it would never match)
    if (!net.isIP(h) && /^[0-9.]+$/.test(h)) throw new Error(`host "${h}" is not an IPv4 address (four numbers 0-255 separated by dots)`);
  }
  const days = o.days ?? 365;
  if (hosts.length === 0) throw new Error('--hosts names no host: give the DNS names and IP addresses the processes are reached at');
  if (!(Number.isInteger(days) && days >= 1)) throw new Error(`--days ${days}: give an integer >= 1`);
  if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory()) throw new Error(`--out ${o.out} is a file: give a folder (created if missing)`);
  const caFile = path.join(o.out, 'ca.pem');
  const caKeyFile = path.join(o.out, 'ca-key.pem');
  // signing with the CA already there: a folder without it is refused before anything is made
  if (o.reuseCa) {
    const missing = [caFile, caKeyFile].filter((f) => !fs.existsSync(f));
    if (missing.length > 0) {
      // a folder that has the CA's certificate but not its key is a copy given to a machine: making a CA there would
      // replace the cluster's
      const advice = fs.existsSync(caFile) ? `give the folder that holds the cluster's ca-key.pem (where alexnet certs made the CA)` : `make the CA first (alexnet certs --out ${o.out}) or give the folder that holds it`;
      throw new Error(`--add-names signs with the CA in ${o.out}, which has no ${missing.map((f) => path.basename(f)).join(' or ')}: ${advice}`);
    }
  }
  makeDir(o.out, 'the certificates folder');
  const written = [...(o.reuseCa ? [] : [caFile, caKeyFile]), ...names.flatMap((n) => [identityFiles(o.out, n).cert, identityFiles(o.out, n).key])];
  if (!o.force) {
    const there = written.filter((f) => fs.existsSync(f));
    // with --add-names, --out is the folder of the CA: only other --names can go there
    const elsewhere = o.reuseCa ? 'or other --names' : 'or another --out';
    if (there.length) throw new Error(`${there.join(', ')} already exist${there.length === 1 ? 's' : ''}: give --force to replace, ${elsewhere}`);
  }
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + days * DAY_MS);

  let ca: X509.X509Certificate;
  let caKey: CryptoKey;
  if (o.reuseCa) {
    try {
      ca = new x509.X509Certificate(fs.readFileSync(caFile, 'utf8'));
      const der = x509.PemConverter.decodeFirst(fs.readFileSync(caKeyFile, 'utf8'));
      caKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
    } catch (e) {
      throw new Error(`cannot use the CA in ${o.out} (ca.pem, ca-key.pem): ${(e as Error).message}`);
    }
  } else {
    const keys = await keyPair();
    ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=alexnet-mp cluster CA ${new Date().toISOString().slice(0, 10)} ${serial().slice(0, 8)}`,
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caKey = keys.privateKey;
    writePrivate(caKeyFile, await pemKey(x509, caKey));
    writePublic(caFile, ca.toString('pem') + '\n');
  }

  const sans = hosts.map((h) => (net.isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
  const files: { name: string; cert: string; key: string }[] = [];
  for (const name of names) {
    const keys = await keyPair();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${name}`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      signingKey: caKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(sans),
        await x509.AuthorityKeyIdentifierExtension.create(ca),
      ],
    });
    const f = identityFiles(o.out, name);
    writePrivate(f.key, await pemKey(x509, keys.privateKey));
    writePublic(f.cert, cert.toString('pem') + '\n');
    files.push({ name, cert: f.cert, key: f.key });
  }
  return { ca: caFile, caKey: caKeyFile, files };
}

/** A private key: readable by its owner only, written whole (temporary file, then renamed); a failure in one line naming the file. */
function writePrivate(file: string, pem: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, pem + '\n', { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw fileError('write', file, e);
  }
}

/** A certificate (public), its failure in one line naming the file. */
function writePublic(file: string, text: string): void {
  try {
    fs.writeFileSync(file, text);
  } catch (e) {
    throw fileError('write', file, e);
  }
}
