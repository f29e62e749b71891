// Pulling both workers' parameters for a checkpoint (run-checkpoint.ts): the call has a deadline, and a worker past it
// is a lost worker (the run restarts from its last checkpoint) rather than a wait without end.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { WorkerClient } from '@alexnet-mp/worker';
import { pullParameters } from '../src/run-checkpoint.js';
import { WorkerFailure } from '../src/coordinator-types.js';

type Client = Pick<WorkerClient, 'parameters'>;

test('GetParameters for a checkpoint goes out with the deadline given; a worker past it is named as lost', async (t) => {
  const deadlines: (number | undefined)[] = [];
  const answers: Client = {
    parameters: async (_momentum, o) => {
      deadlines.push(o?.timeoutMs);
      return new Map();
    },
  };
  const hung: Client = {
    parameters: async (_momentum, o) => {
      deadlines.push(o?.timeoutMs);
      throw Object.assign(new Error(`${grpc.status.DEADLINE_EXCEEDED} DEADLINE_EXCEEDED: Deadline exceeded`), { code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded', metadata: new grpc.Metadata() });
    },
  };
  const label = (n: number) => `worker ${n}`;
  await pullParameters([answers, answers], label, 7, 60_000);
  t.deepEqual(deadlines, [60_000, 60_000]);
  const e = await t.throwsAsync(pullParameters([answers, hung], label, 7, 1234));
  t.true(e instanceof WorkerFailure);
  t.true((e as WorkerFailure).lost, 'past the deadline: lost, so the run restarts');
  t.is((e as WorkerFailure).tower, 1);
  t.regex(e!.message, /^worker 1 failed to send its parameters for the checkpoint at step 7: /);
  t.deepEqual(deadlines.slice(2), [1234, 1234]);
});
