/** A Step's micro_batches checked before the step starts (pipeline.ts): the count, and a peer that takes micro-batches. */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { checkStepMicroBatches } from '../src/pipeline.js';
import type { Run } from '../src/run.js';

const runWith = (features: string[]) => ({ batch: 32, peer: { address: '10.0.0.2:7001', features } }) as unknown as Run;

test('0 and 1 are the whole batch, whatever the peer; N > 1 must divide the batch', (t) => {
  for (const n of [0, 1]) t.notThrows(() => checkStepMicroBatches(runWith([]), n));
  t.notThrows(() => checkStepMicroBatches(runWith(['micro-batches']), 4));
  const e = t.throws(() => checkStepMicroBatches(runWith(['micro-batches']), 5)) as Error & { code: number };
  t.is(e.code, grpc.status.INVALID_ARGUMENT);
  t.regex(e.message, /Step micro_batches: 5 micro-batches do not divide the batch of 32 images/);
});

test('a peer that does not list "micro-batches" (an older build) makes N > 1 a FAILED_PRECONDITION before anything crosses', (t) => {
  const e = t.throws(() => checkStepMicroBatches(runWith(['exchange-stream']), 2)) as Error & { code: number };
  t.is(e.code, grpc.status.FAILED_PRECONDITION);
  t.regex(e.message, /the peer at 10\.0\.0\.2:7001 is an older build that takes no micro-batches; use 1 \(--micro-batches 1\)/);
});
