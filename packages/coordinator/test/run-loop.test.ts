// The run loop's schedule on its own (run-loop.ts), against a host that records what it is asked: which steps go
// out queued behind the step before, where checkpoints, evaluations and tasks fall, what a stop and a failed
// step do. The same loop with real workers: test/queued-steps.test.ts and test/between-steps.test.ts.
import test from 'ava';
import type { U8Batch } from '../src/batch-source.js';
import type { StepMetrics } from '../src/coordinator-types.js';
import { runLoop, type RunLoopHost } from '../src/run-loop.js';

interface Options {
  readonly checkpointEvery?: number;
  readonly evalEvery?: number;
  /** The step that fails (its sendStep rejects once it has been waited for). */
  readonly failAt?: number;
  /** Asks for a stop when this step is sent. */
  readonly stopAt?: number;
  /** queueingAfter's answer (the coordinator's: option, features, tasks, micro-batches). */
  readonly queueing?: boolean;
  /** The batch the source fails to make. */
  readonly sourceFailsAt?: number;
  /** A worker's reply to this step says it is draining: a checkpoint is asked for after it. */
  readonly drainAt?: number;
  /** Checkpoints by time: every this many (fake) ms, each step taking `stepMs` of them. */
  readonly checkpointMs?: number;
  readonly stepMs?: number;
  /**
   * Steps that end at once: a step sent alone within the turn of the event loop it was sent in, a queued one as
   * soon as the step before it ended (both replies in before the loop looks again: a coordinator that stalled).
   */
  readonly instant?: boolean;
}

function fakeHost(o: Options) {
  const events: string[] = [];
  /** The checkpoints written for the time alone (their successor replaces them). */
  const byTimeAt: number[] = [];
  let stepsDone = 0;
  let stopRequest: string | null = null;
  let checkpointAsked = false;
  // a fake clock: each step advances it by stepMs
  let clock = 0;
  let checkpointedAt = 0;
  const batch = (step: number): U8Batch => ({ images: new Uint8Array([step]), labels: new Int32Array([step % 10]) }) as unknown as U8Batch;
  const host: RunLoopHost = {
    o: {
      batch: 1,
      source: {
        description: 'fake',
        batch: async (step: number) => {
          if (step === o.sourceFailsAt) throw new Error(`no batch ${step}`);
          return batch(step);
        },
      } as unknown as RunLoopHost['o']['source'],
      checkpoint: o.checkpointEvery || o.checkpointMs ? ({ dir: '/nowhere', every: o.checkpointEvery ?? 0, everyMs: o.checkpointMs, keep: 1 } as RunLoopHost['o']['checkpoint']) : undefined,
      eval: o.evalEvery ? ({ every: o.evalEvery } as RunLoopHost['o']['eval']) : undefined,
    },
    get stepsDone() {
      return stepsDone;
    },
    get stopRequest() {
      return stopRequest;
    },
    get checkpointAsked() {
      return checkpointAsked;
    },
    async sendStep(step, b, previous) {
      if ((b.images as Uint8Array)[0] !== step) throw new Error(`step ${step} got the batch of step ${(b.images as Uint8Array)[0]}`);
      events.push(previous ? `queue ${step}` : `send ${step}`);
      if (step === o.stopAt) stopRequest = 'test';
      if (previous && (await previous.then(() => false, () => true))) throw new Error(`step ${step} abandoned`);
      if (!o.instant) {
        // the step ends once the loop has queued the one after it, or (nothing to queue) 50 ms on: never before the
        // loop had its turn to queue, however loaded the machine (a 2 ms step raced it under load)
        const until = performance.now() + 50;
        while (!events.includes(`queue ${step + 1}`) && performance.now() < until) await new Promise((r) => setTimeout(r, 1));
      } else if (!previous) await new Promise((r) => setImmediate(r));
      if (step === o.failAt) throw new Error(`step ${step} failed`);
      stepsDone = step + 1;
      if (step === o.drainAt) checkpointAsked = true;
      clock += o.stepMs ?? 0;
      return { step } as unknown as StepMetrics;
    },
    queueingAfter(done) {
      if (o.queueing === false || stopRequest !== null || checkpointAsked) return false;
      return !(o.checkpointEvery && done % o.checkpointEvery === 0) && !(o.evalEvery && done % o.evalEvery === 0);
    },
    async writeCheckpoint(evalDue, byTime) {
      events.push(`checkpoint ${stepsDone}${evalDue ? ' (evaluation due)' : ''}`);
      if (byTime) byTimeAt.push(stepsDone);
      checkpointedAt = clock;
      checkpointAsked = false;
      return `ckpt-${stepsDone}`;
    },
    async evaluateAfterStep() {
      events.push(`eval ${stepsDone}`);
    },
    async runWaitingTasks() {},
    cancel() {
      events.push('cancel');
    },
    dataWaited() {},
    sinceCheckpointMs: () => clock - checkpointedAt,
  };
  return { host, events, byTimeAt, first: () => host.o.source.batch(0, 1) };
}

test('each step but the first goes out queued behind the one before when nothing falls between them', async (t) => {
  const { host, events, first } = fakeHost({});
  const seen: number[] = [];
  const r = await runLoop(host, 5, first(), (m) => seen.push(m.step), {});
  t.deepEqual(seen, [0, 1, 2, 3, 4]);
  t.deepEqual(events, ['send 0', 'queue 1', 'queue 2', 'queue 3', 'queue 4']);
  t.is(r.stopped, null);
});

test('a queued step that has already ended when the loop comes back to it keeps its number (the batches stay with their steps)', async (t) => {
  const { host, events, first } = fakeHost({ instant: true, checkpointEvery: 4 });
  const seen: number[] = [];
  await runLoop(host, 9, first(), (m) => seen.push(m.step), {});
  t.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  t.deepEqual(events, ['send 0', 'queue 1', 'queue 2', 'queue 3', 'checkpoint 4', 'send 4', 'queue 5', 'queue 6', 'queue 7', 'checkpoint 8', 'send 8', 'checkpoint 9']);
});

test('a checkpoint or an evaluation due after a step: the next step waits for it and is sent after it', async (t) => {
  const { host, events, first } = fakeHost({ checkpointEvery: 2, evalEvery: 3 });
  await runLoop(host, 6, first(), () => {}, {});
  t.deepEqual(events, ['send 0', 'queue 1', 'checkpoint 2', 'send 2', 'eval 3', 'send 3', 'checkpoint 4', 'send 4', 'queue 5', 'checkpoint 6 (evaluation due)', 'eval 6']);
});

test('a worker draining after a step: a checkpoint after it (the step queued behind it first), then the steps go on', async (t) => {
  const { host, events, first } = fakeHost({ checkpointEvery: 100, drainAt: 2 });
  await runLoop(host, 7, first(), () => {}, {});
  t.deepEqual(events, ['send 0', 'queue 1', 'queue 2', 'queue 3', 'checkpoint 4', 'send 4', 'queue 5', 'queue 6', 'checkpoint 7']);
  // a run that writes no checkpoints writes none for it either
  const none = fakeHost({ drainAt: 1 });
  await runLoop(none.host, 3, none.first(), () => {}, {});
  t.false(none.events.some((e) => e.startsWith('checkpoint')));
});

test('without queueing every step is sent after the one before answered', async (t) => {
  const { host, events, first } = fakeHost({ queueing: false });
  await runLoop(host, 3, first(), () => {}, {});
  t.deepEqual(events, ['send 0', 'send 1', 'send 2']);
});

test('a stop asked for during a step ends the loop after it (and the step queued behind it), with a checkpoint of the steps done', async (t) => {
  const { host, events, first } = fakeHost({ checkpointEvery: 100, stopAt: 2 });
  const r = await runLoop(host, 10, first(), () => {}, {});
  t.deepEqual(r.stopped, { reason: 'test', step: 3 });
  t.deepEqual(events, ['send 0', 'queue 1', 'queue 2', 'checkpoint 3']);
  t.is(r.steps.length, 3);
});

test('a stop asked for during a step after which an evaluation is due: the checkpoint at once, saying the evaluation is due (the resumed run does it), not the evaluation first', async (t) => {
  const { host, events, first } = fakeHost({ checkpointEvery: 100, evalEvery: 3, stopAt: 2 });
  const r = await runLoop(host, 10, first(), () => {}, {});
  t.deepEqual(r.stopped, { reason: 'test', step: 3 });
  t.deepEqual(events, ['send 0', 'queue 1', 'queue 2', 'checkpoint 3 (evaluation due)']);
  // the run's last step: its evaluation is the run's result, done before the loop ends
  const last = fakeHost({ checkpointEvery: 100, evalEvery: 3, stopAt: 2 });
  const r2 = await runLoop(last.host, 3, last.first(), () => {}, {});
  t.is(r2.stopped, null);
  t.deepEqual(last.events, ['send 0', 'queue 1', 'queue 2', 'checkpoint 3 (evaluation due)', 'eval 3']);
});

test('a stop asked for during a step after which a checkpoint for the time alone is due: that one checkpoint, still marked as for the time alone', async (t) => {
  const { host, events, byTimeAt, first } = fakeHost({ checkpointMs: 1000, stepMs: 400, queueing: false, stopAt: 2 });
  const r = await runLoop(host, 8, first(), () => {}, {});
  t.deepEqual(r.stopped, { reason: 'test', step: 3 });
  t.deepEqual(events, ['send 0', 'send 1', 'send 2', 'checkpoint 3']);
  t.deepEqual(byTimeAt, [3]);
});

test('a failed step cancels the step queued behind it and fails the loop', async (t) => {
  const { host, events, first } = fakeHost({ failAt: 2 });
  await t.throwsAsync(runLoop(host, 6, first(), () => {}, {}), { message: 'step 2 failed' });
  t.deepEqual(events, ['send 0', 'queue 1', 'queue 2', 'queue 3', 'cancel']);
});

test('a batch that fails while a step runs fails the loop where it is needed, after the steps before it', async (t) => {
  const { host, events, first } = fakeHost({ sourceFailsAt: 2 });
  const seen: number[] = [];
  await t.throwsAsync(runLoop(host, 6, first(), (m) => seen.push(m.step), {}), { message: 'no batch 2' });
  t.deepEqual(seen, [0, 1]);
  t.deepEqual(events, ['send 0', 'queue 1']);
});

test('checkpoints by time: after the first step that ends checkpoint.everyMs or more after the last checkpoint, and after the last step', async (t) => {
  const { host, events, first } = fakeHost({ checkpointMs: 1000, stepMs: 400, queueing: false });
  await runLoop(host, 8, first(), () => {}, {});
  t.deepEqual(
    events.filter((e) => e.startsWith('checkpoint')),
    ['checkpoint 3', 'checkpoint 6', 'checkpoint 8'],
  );
});

test('dueAfter: a checkpoint by time once everyMs has passed, said to be for the time alone unless steps or epochs call for one too', async (t) => {
  const { dueAfter } = await import('../src/run-schedule.js');
  const ck = (everyMs?: number, every = 0) => ({ checkpoint: { dir: '/nowhere', every, everyMs, keep: 1 } });
  t.like(dueAfter(ck(1000), 3, false, 999), { checkpoint: false, byTimeOnly: false });
  t.like(dueAfter(ck(1000), 3, false, 1000), { checkpoint: true, byTimeOnly: true });
  t.like(dueAfter(ck(1000, 3), 3, false, 5000), { checkpoint: true, byTimeOnly: false }, 'due by steps as well');
  t.like(dueAfter(ck(1000), 3, true, 5000), { checkpoint: true, byTimeOnly: false }, 'the last step');
  t.like(dueAfter({ ...ck(1000), stepsPerEpoch: 3 }, 3, false, 5000), { checkpoint: true, byTimeOnly: false }, 'an epoch end');
  t.like(dueAfter(ck(0), 3, false, 1e9), { checkpoint: false, byTimeOnly: false }, '0: off');
  t.like(dueAfter(ck(undefined), 3, false, 1e9), { checkpoint: false, byTimeOnly: false }, 'absent: off');
  t.like(dueAfter({}, 3, false, 1e9), { checkpoint: false, byTimeOnly: false }, 'no checkpoints at all');
});
