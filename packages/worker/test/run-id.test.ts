/** run.ts redactRunId: what a stranger may read of a run id (Status, refusals, ListWorkers, the dashboard). */
import test from 'ava';
import { redactRunId } from '../src/run.js';

test('a generated run id keeps its time, a named one its first third (8 characters at most), a short one nothing', (t) => {
  t.is(redactRunId('20261206T120000Z-5f3a9c'), '20261206T120000Z-…');
  t.is(redactRunId('cifar-baseline'), 'cifa…');
  t.is(redactRunId('imagenet-paper-reproduction-2026-december'), 'imagenet…');
  t.is(redactRunId('r2'), '…');
  t.is(redactRunId(''), '');
});
