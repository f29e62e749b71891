// Configuring the two workers (configure.ts) against stand-in clients: a worker whose peer does not answer is a
// misaddressed --peer on the run's first start (a clear refusal) but a lost peer on a restart (recoverable), since
// the addresses worked before. The same refusal with real workers: test/bad-input.test.ts.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { ConfigureReply, WorkerClient } from '@alexnet-mp/worker';
import { UserError } from '../src/cli/errors.js';
import { configureWorkers, type ConfigureTarget } from '../src/configure.js';
import { WorkerFailure, type CoordinatorOptions } from '../src/coordinator-types.js';

const WORKERS = ['10.0.0.1:7000', '10.0.0.2:7000'] as const;

/** Worker 0 answers that its peer (worker 1) did not answer its Hello; worker 1 configures. */
function target(restart: boolean): ConfigureTarget {
  const peerSilent = Object.assign(new Error('peer did not answer'), {
    code: grpc.status.UNAVAILABLE,
    details: `peer at ${WORKERS[1]} did not answer: connect ECONNREFUSED ${WORKERS[1]}`,
    metadata: new grpc.Metadata(),
  });
  const reply: ConfigureReply = { parameters: 10, peer_address: WORKERS[0] } as ConfigureReply;
  const client = (t: number) => ({ configure: () => (t === 0 ? Promise.reject(peerSilent) : Promise.resolve(reply)) }) as unknown as WorkerClient;
  return {
    clients: [client(0), client(1)],
    o: { workers: [...WORKERS], batch: 4, seed: 1, source: {} } as unknown as CoordinatorOptions,
    runId: 'r',
    microBatches: 1,
    restart,
    label: (t) => `worker ${t} (tower ${t}) at ${WORKERS[t]}`,
  };
}

test("first start: a peer that does not answer is worker 0's --peer to check, said as a user error", async (t) => {
  const e = await t.throwsAsync(configureWorkers(target(false), 1000));
  t.true(e instanceof UserError);
  t.regex(String(e?.message), /^worker 0 \(tower 0\) at 10\.0\.0\.1:7000 could not reach its peer: peer at 10\.0\.0\.2:7000 did not answer: .*; check worker 0's --peer/);
});

test('restart after a lost worker: a peer that does not answer is that peer lost again, which recovery can wait for', async (t) => {
  const e = await t.throwsAsync(configureWorkers(target(true), 1000));
  t.true(e instanceof WorkerFailure);
  const f = e as WorkerFailure;
  t.is(f.tower, 1);
  t.true(f.lost);
  t.regex(f.message, /^worker 1 \(tower 1\) at 10\.0\.0\.2:7000 was lost while being configured: worker 0 \(tower 0\) at 10\.0\.0\.1:7000 could not reach it: peer at 10\.0\.0\.2:7000 did not answer/);
});
