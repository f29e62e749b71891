/** rpc.ts: a gRPC error described for people, without grpc-js's notes for developers. */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { describeError, tidyDetails } from '../src/rpc.js';

test("grpc-js's connection and deadline notes are left out; other details are kept", (t) => {
  t.is(tidyDetails('No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: '), 'connect ECONNREFUSED 127.0.0.1:1');
  t.is(tidyDetails('Deadline exceeded after 10.001s,name resolution: 0.054s,metadata filters: 0.001s'), 'Deadline exceeded after 10.001s');
  // OpenSSL's line (its codes, routine, file and line, and a line break): the library and the reason
  t.is(tidyDetails('No connection established. Last error: 802CEC24AA7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n. Resolution note: '), 'SSL routines: wrong version number');
  t.is(tidyDetails('preset differs (coordinator: tiny, worker: cifar)'), 'preset differs (coordinator: tiny, worker: cifar)');
});

test('a service error is its status name and tidied details; anything else its message', (t) => {
  const e = Object.assign(new Error('14 UNAVAILABLE: x'), { code: grpc.status.UNAVAILABLE, details: 'No connection established. Last error: Error: connect ECONNREFUSED 10.0.0.1:5. Resolution note: ', metadata: new grpc.Metadata() });
  t.is(describeError(e), 'UNAVAILABLE: connect ECONNREFUSED 10.0.0.1:5');
  t.is(describeError(new Error('plain')), 'plain');
  t.is(describeError('text'), 'text');
});
