/** auth.ts: what a caller that could not reach a server is told about its credentials, by what the TLS layer said. */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { certificateFailure, unreachableHint } from '../src/auth.js';
import { peerUnreachable } from '../src/peer-service.js';

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

test("a worker that cannot greet its peer says why: nothing listening, a certificate, a token, TLS on one side only, or no answer", (t) => {
  const err = (code: grpc.status, details: string) => Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
  const at = '127.0.0.1:5001';
  const refused = peerUnreachable(at, err(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:5001'), undefined);
  t.is(refused.code, grpc.status.UNAVAILABLE, 'a peer not (yet) there: lost while restarting, or an address to fix');
  t.regex(refused.message, /^peer at 127\.0\.0\.1:5001 did not answer: nothing listens there \(UNAVAILABLE: .*ECONNREFUSED/);
  const otherCa = peerUnreachable(at, err(grpc.status.UNAVAILABLE, 'No connection established. Last error: self-signed certificate in certificate chain'), tls);
  t.is(otherCa.code, grpc.status.FAILED_PRECONDITION, 'no retry makes it work');
  t.regex(otherCa.message, /^the TLS handshake with the peer at 127\.0\.0\.1:5001 failed on a certificate \(.*\): the certificates are not of one CA/);
  const name = peerUnreachable('vm:5001', err(grpc.status.UNAVAILABLE, "Hostname/IP does not match certificate's altnames: Host: vm. is not in the cert's altnames"), tls);
  t.regex(name.message, /the worker's certificate does not name the host vm it was reached at/);
  const token = peerUnreachable(at, err(grpc.status.UNAUTHENTICATED, 'no token: this server takes calls with the shared token of its run only'), undefined);
  t.is(token.code, grpc.status.FAILED_PRECONDITION);
  t.regex(token.message, /^peer at 127\.0\.0\.1:5001 refused us \(UNAUTHENTICATED: no token.*\): give both workers the same --token-file/);
  t.regex(peerUnreachable(at, err(grpc.status.UNAVAILABLE, 'SSL routines: wrong version number'), tls).message, /^a server answers at 127\.0\.0\.1:5001 but not as this worker connects \(.*\): it was started without --tls: give both workers --tls, or neither$/);
  t.regex(peerUnreachable(at, err(grpc.status.FAILED_PRECONDITION, 'a worker of tower 0 said hello to this worker, of tower 0'), undefined).message, /^peer at 127\.0\.0\.1:5001 refused us: /);
  t.regex(peerUnreachable(at, err(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded after 30.001s'), undefined).message, /^peer at 127\.0\.0\.1:5001 did not answer: DEADLINE_EXCEEDED/);
});
