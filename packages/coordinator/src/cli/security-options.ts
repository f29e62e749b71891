/** The authentication options of `worker`, `coordinator` and `launch`, and the Security they make. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Options } from 'yargs';
import { CredentialsError, checkToken, loadTlsIdentity, randomToken, readTokenFile, type Security } from '@alexnet-mp/worker';
import { identityFiles } from '../certs.js';
import { UserError } from './errors.js';

/** The environment variable a token may come in (launch passes its children the token this way, not on their command line). */
export const TOKEN_ENV = 'ALEXNET_TOKEN';

export const securityOptions = {
  tls: { type: 'string', describe: 'mutual TLS with the certificates in DIR (made by `alexnet certs --out DIR`): ca.pem and this process\'s NAME.pem, NAME-key.pem (NAME: worker0, worker1 or coordinator)' },
  'tls-ca': { type: 'string', describe: 'mutual TLS: the CA certificate (PEM) every peer\'s certificate must be signed by (instead of DIR/ca.pem)' },
  'tls-cert': { type: 'string', describe: "mutual TLS: this process's certificate (PEM)" },
  'tls-key': { type: 'string', describe: "mutual TLS: this process's private key (PEM)" },
  'token-file': { type: 'string', describe: `a shared token (the file's first line, ${16}+ characters) every call carries and every server checks; also ${TOKEN_ENV}. Does not encrypt: use --tls across hosts` },
  token: { type: 'string', describe: `the shared token itself (visible in the process list: prefer --token-file or ${TOKEN_ENV})` },
} satisfies Record<string, Options>;

export interface SecurityArgs {
  tls?: string;
  'tls-ca'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  'token-file'?: string;
  token?: string;
}

/** Token files already warned about in this process. */
const warned = new Set<string>();

/** A token file or a private key other users can read gives the run away: said once (its mode, and the chmod that mends it). */
function warnIfOthersRead(file: string, what = 'the token file'): void {
  try {
    const st = fs.statSync(file);
    const mode = st.mode & 0o777;
    if (!st.isFile() || (mode & 0o077) === 0 || warned.has(file)) return;
    warned.add(file);
    process.stderr.write(`alexnet: warning: ${what} ${file} can be read by other users (mode ${mode.toString(8)}): chmod 600 ${file}\n`);
  } catch {
    // a missing file is said where it is read
  }
}

/** The token from --token-file, --token or $ALEXNET_TOKEN (in that order; two of the options at once is a mistake), or none. */
export function tokenFrom(a: SecurityArgs, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (a['token-file'] !== undefined && a.token !== undefined) throw new UserError('give --token-file or --token, not both');
  try {
    if (a['token-file'] !== undefined) {
      warnIfOthersRead(a['token-file']);
      return readTokenFile(a['token-file']);
    }
    if (a.token !== undefined) {
      const token = checkToken(a.token, '--token');
      // as the option's help says: the process list shows it to every user of the machine
      if (!warned.has('--token')) process.stderr.write(`alexnet: warning: --token is visible to every user of this machine in the process list (ps): give --token-file FILE (mode 600) or $${TOKEN_ENV} instead\n`);
      warned.add('--token');
      return token;
    }
    const e = env[TOKEN_ENV];
    if (e !== undefined && e !== '') return checkToken(e, TOKEN_ENV);
  } catch (err) {
    if (err instanceof CredentialsError) throw new UserError(err.message);
    throw err;
  }
  return undefined;
}

/**
 * The Security of process `name` ("worker0", "worker1", "coordinator"): TLS from --tls DIR or the three
 * --tls-* files (each file option overrides DIR's), a token from tokenFrom; undefined when neither.
 */
export function securityFrom(a: SecurityArgs, name: string, env: NodeJS.ProcessEnv = process.env): Security | undefined {
  const token = tokenFrom(a, env);
  const explicit = [a['tls-ca'], a['tls-cert'], a['tls-key']];
  let tls: Security['tls'];
  if (a.tls !== undefined || explicit.some((x) => x !== undefined)) {
    const dir = a.tls !== undefined ? identityFiles(a.tls, name) : null;
    const ca = a['tls-ca'] ?? dir?.ca;
    const cert = a['tls-cert'] ?? dir?.cert;
    const key = a['tls-key'] ?? dir?.key;
    if (!ca || !cert || !key) throw new UserError('mutual TLS needs --tls DIR, or all three of --tls-ca, --tls-cert and --tls-key');
    try {
      tls = loadTlsIdentity({ ca, cert, key });
    } catch (err) {
      if (err instanceof CredentialsError) throw new UserError(err.message);
      throw err;
    }
    // once it is known to be a key (a certificate given for it is refused above, without advice on its mode)
    warnIfOthersRead(key, 'the private key');
  }
  if (!tls && !token) return undefined;
  return { ...(tls ? { tls } : {}), ...(token ? { token } : {}) };
}

/** `launch`'s options: one certificate per process, so a directory, not files. */
export const launchSecurityOptions = {
  tls: { ...securityOptions.tls, describe: 'mutual TLS between all three processes with the certificates in DIR (`alexnet certs --out DIR`: ca.pem, worker0, worker1, coordinator); default: a random shared token' },
  'token-file': { ...securityOptions['token-file'], describe: `the shared token the three processes use (default: ${TOKEN_ENV}, else a random one for this launch)` },
  token: securityOptions.token,
} satisfies Record<string, Options>;

/**
 * What `launch` gives its children: `--tls DIR` on their command lines (every process's certificate checked
 * here first), and a shared token in their environment, never on a command line: the user's, or a random one
 * per launch, so that nothing else on the machine can drive its workers, at the cost of one metadata header a call.
 */
export function launchSecurity(a: SecurityArgs, env: NodeJS.ProcessEnv = process.env): { args: string[]; env: Record<string, string>; generated: boolean } {
  if (a['tls-ca'] !== undefined || a['tls-cert'] !== undefined || a['tls-key'] !== undefined) throw new UserError('launch takes --tls DIR (a certificate per process), not --tls-ca/--tls-cert/--tls-key');
  const given = tokenFrom(a, env);
  const token = given ?? randomToken();
  if (a.tls !== undefined) for (const name of ['worker0', 'worker1', 'coordinator']) securityFrom({ tls: a.tls }, name, {});
  return { args: a.tls !== undefined ? ['--tls', a.tls] : [], env: { [TOKEN_ENV]: token }, generated: given === undefined };
}

/**
 * What a tool (`alexnet inspect --coordinator`) needs to call a launched run: `--tls DIR`, and the token as a
 * file: the user's --token-file, or the launch's random token written where only this user can read it
 * (RUN_DIR/token, else a temporary folder that `cleanup` removes). A token given with --token or
 * ALEXNET_TOKEN is the user's to give again.
 */
export function toolCredentials(a: SecurityArgs, launched: { env: Record<string, string>; generated: boolean }, runDir: string | undefined): { args: string[]; cleanup: () => void } {
  const args = a.tls !== undefined ? ['--tls', a.tls] : [];
  if (a['token-file'] !== undefined) return { args: [...args, '--token-file', a['token-file']], cleanup: () => {} };
  if (!launched.generated) return { args, cleanup: () => {} };
  const dir = runDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-launch-'));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'token');
  fs.writeFileSync(file, launched.env[TOKEN_ENV] + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  if (runDir !== undefined) return { args: [...args, '--token-file', file], cleanup: () => {} };
  // a temporary folder with a secret in it: gone however launch exits (process.exit on an early signal, an error)
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  process.on('exit', remove);
  return {
    args: [...args, '--token-file', file],
    cleanup: () => {
      process.off('exit', remove);
      remove();
    },
  };
}
