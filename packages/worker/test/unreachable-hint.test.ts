/** auth.ts: what a caller that could not reach a server is told about its credentials, by what the TLS layer said. */
import test from 'ava';
import { certificateFailure, unreachableHint } from '../src/auth.js';

const tls = { tls: { ca: Buffer.from(''), key: Buffer.from(''), cert: Buffer.from('') } } as unknown as Parameters<typeof unreachableHint>[1];

test('an expired certificate is said as expired, with how to make new ones; no retry makes it work', (t) => {
  const details = 'No connection established. Last error: Error: certificate has expired';
  t.true(certificateFailure(details));
  t.is(unreachableHint(details, tls, '10.0.0.1:5000'), 'a certificate has expired: make them again with alexnet certs (--days sets how long they last) and give them to all three processes');
});

test('certificates of another CA, a host the certificate does not name, a plain TLS failure, no TLS: each its own hint', (t) => {
  t.regex(unreachableHint('unable to verify the first certificate', tls), /^the certificates are not of one CA/);
  t.regex(unreachableHint("Hostname/IP does not match certificate's altnames", tls, 'gpu7:5000'), /^the worker's certificate does not name the host gpu7 it was reached at/);
  t.regex(unreachableHint('wrong version number', tls), /^the TLS handshake failed/);
  t.is(unreachableHint('connect ECONNREFUSED', undefined), 'if it was started with --tls, give --tls here too');
  t.false(certificateFailure('connect ECONNREFUSED 127.0.0.1:1'));
});
