/**
 * Who may call a worker: mutual TLS (a certificate signed by the cluster's
 * CA, both ways), a shared token in every call's metadata, both, or neither.
 *
 * - TLS: the server asks every client for a certificate, OpenSSL verifies it
 *   against the CA (chain, validity, purpose), and a connection it did not
 *   authorise is closed before gRPC sees it; the client checks the server's
 *   certificate the same way (and its name). grpc-js does the TLS of clients;
 *   on the server side the TLS listener is ours (node:tls, its authorised
 *   connections handed to grpc-js's connection injector) so that a refused
 *   connection is logged with the address and the reason: grpc-js (and
 *   Node's rejectUnauthorized) would drop it without a word.
 * - Token: every call carries `authorization: Bearer TOKEN`; a server
 *   interceptor refuses a call without the right one with UNAUTHENTICATED
 *   before its message reaches a handler, and logs who and which call.
 *   Compared in constant time. A token alone does not encrypt anything.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { formatAddress } from './protocol.js';
import { isServiceError } from './rpc.js';
import { DEFAULT_CONNECTION_LIMITS, capConnections, injectWhenItSpeaks, type ConnectionLimits, type OpenConnections } from './connection-limits.js';
import { fsReason } from '@alexnet-mp/core';

/** PEM bytes of the CA certificate, this process's certificate and its private key. */
export interface TlsIdentity {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The certificate's subject CN, for logs. */
  readonly name: string;
}

/** How this process authenticates its calls and checks incoming ones; nothing set: plain gRPC. */
export interface Security {
  readonly tls?: TlsIdentity;
  readonly token?: string;
}

/** What a server with `s` checks of its callers, as HandshakeReply.authentication says it. */
export function authenticationOf(s: Security | undefined): 'none' | 'token' | 'tls' | 'tls+token' {
  if (s?.tls && s.token) return 'tls+token';
  return s?.tls ? 'tls' : s?.token ? 'token' : 'none';
}

/** Metadata key of the token (value "Bearer TOKEN"). */
export const TOKEN_METADATA_KEY = 'authorization';
export const MIN_TOKEN_LENGTH = 16;
const MAX_TOKEN_LENGTH = 1024;

/** A token the user gave is unusable; the message says why. */
export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

/** Checks a token's form (length, characters a metadata value can carry); returns it. */
export function checkToken(token: string, where: string): string {
  if (token.length < MIN_TOKEN_LENGTH) throw new CredentialsError(`the token from ${where} has ${token.length} characters: use at least ${MIN_TOKEN_LENGTH} (e.g. ${randomTokenHint})`);
  if (token.length > MAX_TOKEN_LENGTH) throw new CredentialsError(`the token from ${where} is longer than ${MAX_TOKEN_LENGTH} characters`);
  if (!/^[\x21-\x7e]+$/.test(token)) throw new CredentialsError(`the token from ${where} has a space or a character outside printable ASCII`);
  return token;
}

export const randomTokenHint = `node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))"`;

/** A random token (192 bits), e.g. for the children of one `alexnet launch`. */
export const randomToken = (): string => crypto.randomBytes(24).toString('base64url');

/** A token file's first line (a trailing newline is not part of the token). */
export function readTokenFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CredentialsError(`cannot read the token file ${file}: ${fsReason(e)}`);
  }
  return checkToken(text.split(/\r?\n/)[0] ?? '', file);
}

/** Whether two tokens are equal, in time that does not depend on where they differ (nor on their lengths: sha256 first). */
export function tokensEqual(a: string, b: string): boolean {
  const h = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();
  return crypto.timingSafeEqual(h(a), h(b));
}

/**
 * Reads and checks the PEM files of a TLS identity: the certificate is signed by the CA, in its validity
 * period, and the key is its key; each failure is a message naming the file.
 */
export function loadTlsIdentity(files: { ca: string; cert: string; key: string }): TlsIdentity {
  const read = (f: string, what: string) => {
    try {
      return fs.readFileSync(f);
    } catch (e) {
      throw new CredentialsError(`cannot read the ${what} ${f}: ${fsReason(e)} (make them with \`alexnet certs --out DIR\`)`);
    }
  };
  const [ca, cert, key] = [read(files.ca, 'CA certificate'), read(files.cert, 'certificate'), read(files.key, 'private key')];
  // a file may hold several certificates: a CA bundle, or this process's certificate followed by the intermediate
  // CAs that signed it (a chain, which TLS sends along)
  const parseAll = (pem: Buffer, f: string): crypto.X509Certificate[] => {
    const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    try {
      if (blocks.length === 0) return [new crypto.X509Certificate(pem)];
      return blocks.map((b) => new crypto.X509Certificate(b));
    } catch (e) {
      throw new CredentialsError(`${f} is not a PEM certificate: ${(e as Error).message}`);
    }
  };
  const anchors = parseAll(ca, files.ca);
  const [own, ...intermediates] = parseAll(cert, files.cert) as [crypto.X509Certificate, ...crypto.X509Certificate[]];
  const subject = (c: crypto.X509Certificate) => c.subject.replace(/\n/g, ', ');
  const now = Date.now();
  const checkValid = (c: crypto.X509Certificate, f: string) => {
    if (now < Date.parse(c.validFrom) || now > Date.parse(c.validTo)) throw new CredentialsError(`${f} is valid from ${c.validFrom} to ${c.validTo}, not now: make new certificates`);
  };
  checkValid(own, files.cert);
  // up the chain: this certificate, the intermediates that signed it (in either file), to a CA of the CA file
  // a signer must be a CA (basicConstraints CA:TRUE), as TLS checks at the handshake
  const signedBy = (c: crypto.X509Certificate, by: crypto.X509Certificate) => by.ca && c.checkIssued(by) && c.verify(by.publicKey);
  let link = own;
  for (let depth = 0; ; depth++) {
    const anchor = anchors.find((a) => signedBy(link, a));
    if (anchor) {
      checkValid(anchor, files.ca);
      break;
    }
    const next = depth < 8 ? [...intermediates, ...anchors].find((c) => c !== link && signedBy(link, c)) : undefined;
    if (!next) {
      const cas = anchors.map(subject).join('; ');
      throw new CredentialsError(`${files.cert} (${subject(own)}) is not signed by the CA in ${files.ca} (${cas})${link === own ? '' : `: its chain ends at ${subject(link)}, which no CA there signed`}`);
    }
    checkValid(next, intermediates.includes(next) ? files.cert : files.ca);
    link = next;
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (e) {
    throw new CredentialsError(`${files.key} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!own.checkPrivateKey(privateKey)) throw new CredentialsError(`${files.key} is not the key of ${files.cert}`);
  return { ca, cert, key, name: /(?:^|\n)CN=([^\n]*)/.exec(own.subject)?.[1] ?? own.subject };
}

/** In words, for the processes' first lines: "mutual TLS as worker0 and a token", "no authentication". */
export function describeSecurity(s: Security | undefined): string {
  const parts = [s?.tls ? `mutual TLS as ${s.tls.name}` : '', s?.token ? 'a shared token' : ''].filter((x) => x);
  return parts.length ? parts.join(' and ') : 'no authentication (plain gRPC)';
}

// ---------------------------------------------------------------- clients

/** Adds the token to every call's metadata. */
function tokenInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(TOKEN_METADATA_KEY, `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

/** A client of a proto-loader service (Worker, Peer) with this process's credentials and the channel `options` (size limits, keepalive). */
export function secureClient(Ctor: grpc.ServiceClientConstructor, address: string, s: Security | undefined, options: grpc.ChannelOptions): grpc.Client {
  if (s?.tls) quietIpServerNameWarning();
  const creds = s?.tls ? grpc.credentials.createSsl(s.tls.ca, s.tls.key, s.tls.cert) : grpc.credentials.createInsecure();
  return new Ctor(address, creds, s?.token ? { ...options, interceptors: [tokenInterceptor(s.token)] } : options);
}

/**
 * grpc-js passes an IP address target as the TLS server name, which Node answers with a deprecation warning
 * (DEP0123) on stderr: noise in every TLS process's log about code we do not own. That one warning is dropped.
 */
let quieted = false;
function quietIpServerNameWarning(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const code = typeof args[1] === 'object' && args[1] !== null ? (args[1] as { code?: string }).code : args[2];
    if (code === 'DEP0123') return;
    emit(...args);
  }) as typeof process.emitWarning;
}

/** A hint for a caller that could not reach a server (`server`: what it is, for the words): what in the credentials may be wrong. */
export function unreachableHint(details: string, s: Security | undefined, address?: string, server = 'worker'): string {
  if (/ERR_TLS_CERT_ALTNAME_INVALID|altnames/i.test(details)) {
    const host = address ? ` ${address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')}` : '';
    return `the ${server}'s certificate does not name the host${host} it was reached at: make the certificates with alexnet certs --hosts listing it, or reach the ${server} by a name they list`;
  }
  if (/certificate has expired|CERT_HAS_EXPIRED/i.test(details)) return 'a certificate has expired: make them again with alexnet certs (--days sets how long they last) and give them to all three processes';
  if (/unable to verify|self.signed|UNABLE_TO_VERIFY|unknown ca|bad certificate|certificate signature/i.test(details)) return "the certificates are not of one CA: give both sides certificates of the same alexnet certs run (its ca.pem)";
  if (/certificate|SSL|TLS|self.signed|wrong version|handshake/i.test(details)) return 'the TLS handshake failed: are both sides started with --tls and certificates of the same CA (alexnet certs)?';
  if (!s?.tls) return 'if it was started with --tls, give --tls here too';
  // nothing more in the details (grpc-js says only "Failed to connect"): a server started without --tls, or one that
  // refused this process's certificate (another CA: its own log names the reason)
  return `if it was started without --tls, it cannot answer a TLS connection; if with --tls, it may have refused this process's certificate (not of its CA): its log says why`;
}

/** A connection refused for its certificates: no retry makes it work (the handshake stops waiting at once). */
export const certificateFailure = (details: string): boolean => /ERR_TLS_CERT_ALTNAME_INVALID|altnames|unable to verify|self.signed|UNABLE_TO_VERIFY|unknown ca|bad certificate|certificate signature|certificate has expired/i.test(details);

/** TLS on one side only: something answered, but not in TLS as the caller spoke it (or in TLS where the caller did not). */
export const tlsMismatch = (details: string): boolean => /wrong version number|packet length too long|http request|unknown protocol/i.test(details);

/**
 * Why a call made waiting for the server to come up (waitForReady) failed: a deadline hides what the connection
 * met, so after DEADLINE_EXCEEDED `quick` (the same server asked without waiting) says it (refused, TLS, ...) when
 * it fails UNAVAILABLE; any other failure is its own reason.
 */
export async function connectionFailure(e: unknown, quick: () => Promise<unknown>): Promise<unknown> {
  if (!isServiceError(e) || e.code !== grpc.status.DEADLINE_EXCEEDED) return e;
  return quick().then(
    () => e,
    (again: unknown) => (isServiceError(again) && again.code === grpc.status.UNAVAILABLE ? again : e),
  );
}

/**
 * `call`, made waiting for the server to come up (waitForReady), raced against `quick` (the same server asked
 * without waiting) every 1.5 s: a connection refused for its certificates rejects at once with that error
 * (UNAVAILABLE), rather than after the whole wait, since no retry makes it work.
 */
export async function failFastOnCertificates<T>(call: Promise<T>, quick: () => Promise<unknown>): Promise<T> {
  let waiting = true;
  const certificates = (async (): Promise<never> => {
    for (;;) {
      await new Promise((r) => setTimeout(r, 1500).unref());
      if (!waiting) return new Promise<never>(() => {});
      const why = await quick().then(
        () => null,
        (e: unknown) => (isServiceError(e) && e.code === grpc.status.UNAVAILABLE && certificateFailure(e.details) ? e : null),
      );
      if (why && waiting) throw why;
    }
  })();
  certificates.catch(() => {}); // raced below
  try {
    return await Promise.race([call, certificates]);
  } finally {
    waiting = false;
  }
}

// ---------------------------------------------------------------- servers

/**
 * Refusal log lines, at most `burst` a minute (a stranger hammering the port must not fill the disk);
 * the lines left out are counted in the next one.
 */
export class RefusalLog {
  private windowStart = 0;
  private inWindow = 0;
  private dropped = 0;
  /** Refusals seen, logged or not. */
  count = 0;
  constructor(private readonly log: (line: string) => void, private readonly burst = 20) {}

  note(who: string, what: string, why: string): void {
    this.count++;
    const now = Date.now();
    if (now - this.windowStart > 60_000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.burst) {
      this.dropped++;
      return;
    }
    this.inWindow++;
    const more = this.dropped ? ` (and ${this.dropped} refusals not logged before this one)` : '';
    this.dropped = 0;
    this.log(`refused ${what} from ${who}: ${why}${more}`);
  }
}

/** The method's name in logs: "Worker.Step". */
const methodName = (path: string) => path.replace(/^\/alexnet\.v1\./, '').replace('/', '.');

/**
 * The server interceptors for `s`: with a token, calls without it (or with another) end with
 * UNAUTHENTICATED at their metadata, before any message is read, and are logged.
 */
export function serverInterceptors(s: Security | undefined, refusals: RefusalLog): grpc.ServerInterceptor[] {
  const token = s?.token;
  if (!token) return [];
  return [
    (method, call) =>
      new grpc.ServerInterceptingCall(call, {
        start(next) {
          next({
            onReceiveMetadata(metadata, mdNext) {
              const values = metadata.get(TOKEN_METADATA_KEY);
              const got = values.length === 1 && typeof values[0] === 'string' && values[0].startsWith('Bearer ') ? values[0].slice(7) : null;
              if (got !== null && tokensEqual(got, token)) {
                mdNext(metadata);
                return;
              }
              const why = got === null ? 'no token' : 'wrong token';
              refusals.note(call.getPeer(), methodName(method.path), why);
              call.sendStatus({
                code: grpc.status.UNAUTHENTICATED,
                details: `${why}: this server takes calls with the shared token of its run only (give the caller the same --token-file or ALEXNET_TOKEN)`,
              });
            },
          });
        },
      }),
  ];
}

/**
 * Listens on host:port for `server`: plain gRPC (grpc-js binds), or with TLS our node:tls listener that asks
 * every client for a certificate of the CA, refuses (and logs) a connection without one, and hands the
 * others to grpc-js. Resolves with the port and `close`, which stops listening and shuts the server down: the
 * calls in flight may finish, for at most 2 s.
 */
export async function listenSecurely(server: grpc.Server, host: string, port: number, s: Security | undefined, refusals: RefusalLog, limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS, connections?: OpenConnections): Promise<{ port: number; close: () => Promise<void> }> {
  const who = (socket: net.Socket) => (socket.remoteAddress ? formatAddress({ host: socket.remoteAddress, port: socket.remotePort ?? 0 }) : 'an unknown address');
  const silent = (socket: net.Socket) => () => refusals.note(who(socket), 'a connection', `nothing sent within ${limits.firstBytesMs / 1000} s; closed`);
  // the listener is ours, its connections handed to grpc-js's connection injector: the bounds on them apply (connection-limits.ts)
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  let listener: net.Server;
  if (!s?.tls) {
    listener = net.createServer((socket) => {
      connections?.add(socket);
      injectWhenItSpeaks(socket, limits, (sk) => injector.injectConnection(sk), silent(socket));
    });
  } else {
    const id = s.tls;
    // the TLS is done here; grpc-js sees an HTTP/2 connection over an authenticated TLS socket (its auth context included)
    // OpenSSL verifies the client's certificate against the CA (chain, validity, purpose) and says so in `authorized`;
    // Node's rejectUnauthorized would drop a failed one silently, so the same check is made here, with a log line
    const tlsListener = tls.createServer(
      { ca: id.ca, cert: id.cert, key: id.key, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['h2'], minVersion: 'TLSv1.2', handshakeTimeout: limits.firstBytesMs },
      (socket) => {
        if (socket.authorized) {
          connections?.add(socket);
          injectWhenItSpeaks(socket, limits, (sk) => injector.injectConnection(sk), silent(socket));
          return;
        }
        refusals.note(who(socket), 'a TLS connection', unauthorizedReason(socket));
        socket.destroy();
      },
    );
    tlsListener.on('tlsClientError', (err, socket) => refusals.note(who(socket), 'a TLS connection', tlsReason(err)));
    listener = tlsListener;
  }
  capConnections(listener, limits, (from) => refusals.note(from, 'a connection', `more than ${limits.maxConnections} connections open; closed`));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const bound = (listener.address() as { port: number }).port;
  return {
    port: bound,
    close: () => {
      injector.destroy();
      listener.close();
      return shutDown(server);
    },
  };
}

/** Lets the calls in flight finish, then stops; forced after 2 s. */
function shutDown(server: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.tryShutdown(() => resolve());
    setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2000).unref();
  });
}

/** Why OpenSSL did not authorise a client's certificate, in words a person can act on. */
function unauthorizedReason(socket: tls.TLSSocket): string {
  const cert = socket.getPeerCertificate();
  const code = String(socket.authorizationError ?? 'not authorised');
  if (!cert || Object.keys(cert).length === 0) return 'no client certificate';
  // the CN is the stranger's to choose: quoted, so that it cannot forge a log line
  const cn = cert.subject?.CN;
  const subject = cn ? `CN=${JSON.stringify(String(cn).slice(0, 64))}` : 'a certificate';
  if (/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|CERT_SIGNATURE_FAILURE/.test(code)) return `a certificate not signed by this cluster's CA (${subject}, ${code})`;
  if (/EXPIRED|NOT_YET_VALID/.test(code)) return `a certificate outside its validity period (${subject}, ${code})`;
  return `${subject} refused: ${code}`;
}

/** OpenSSL's reason for a failed handshake, in words a person can act on. */
function tlsReason(err: Error & { code?: string; reason?: string }): string {
  const raw = err.reason ?? err.message;
  if (/wrong version number|http request/i.test(raw)) return `not TLS: a client without --tls (${raw})`;
  if (/unknown ca|certificate verify failed|bad certificate/i.test(raw)) return `the client does not trust this server's certificate (${raw})`;
  if (/ECONNRESET|socket hang up/i.test(raw)) return `the client closed the connection during the TLS handshake (${raw}; it may not trust this server's certificate)`;
  return raw;
}

/** Whether a listen address is this machine only (127.0.0.0/8, ::1, localhost). */
export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
