/** The authentication options of `worker`, `coordinator` and `launch`, and the Security they make. */
import type { Options } from 'yargs';
import { CredentialsError, checkToken, loadTlsIdentity, readTokenFile, type Security } from '@alexnet-mp/worker';
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

/** The token from --token-file, --token or $ALEXNET_TOKEN (in that order; two of the options at once is a mistake), or none. */
export function tokenFrom(a: SecurityArgs, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (a['token-file'] !== undefined && a.token !== undefined) throw new UserError('give --token-file or --token, not both');
  try {
    if (a['token-file'] !== undefined) return readTokenFile(a['token-file']);
    if (a.token !== undefined) return checkToken(a.token, '--token');
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
  }
  if (!tls && !token) return undefined;
  return { ...(tls ? { tls } : {}), ...(token ? { token } : {}) };
}
