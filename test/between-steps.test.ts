/**
 * Coordinator.betweenSteps, with real workers: a task asked for during a run runs after the steps in flight (the
 * step being reported, and the one queued behind it when there is one) and before the next one sent (the workers
 * answer GetParameters only then: they refuse it during a step; no step is queued while a task waits), training waits
 * for it once and carries on; a task asked for before `run` finishes before the first step, one asked for
 * during an evaluation outside `run` runs after it.
 */
import test from 'ava';
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

test('betweenSteps: tasks run between two steps, never during one, and training carries on', async (t) => {
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 3, hyper, source: new SyntheticSource(tiny, 3) });
  t.teardown(() => c.close());
  await c.start();

  const log: string[] = [];
  // before the run: begun at once, and the first step waits for it
  const before = c.betweenSteps(async () => {
    const p = await c.clients[0].parameters();
    log.push(`task before run, steps done ${c.stepsCompleted}`);
    return p.get('conv1')!.w;
  });
  const tasks: Promise<number>[] = [];
  // when each step and each task ran (ms): they must not overlap
  const spans: { what: string; from: number; to: number }[] = [];
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const from = performance.now();
    const r = await f();
    spans.push({ what, from, to: performance.now() });
    return r;
  };
  // also tasks asked for at any moment, most of them while a step is in flight
  const timerTasks: Promise<string>[] = [];
  const timer = setInterval(() => {
    if (timerTasks.length < 6) timerTasks.push(c.betweenSteps(() => timed('timer task', async () => (await c.clients[1].status()).state)));
  }, 15);
  // whether step m + 1 was already sent (queued) when step m was reported: a task asked for then waits for it too
  // (the timer's tasks may keep it from being queued: a waiting task stops queueing)
  const nextQueued: boolean[] = [];
  let queuedSeen = 0;
  const steps = await c.run(5, (m) => {
    nextQueued[m.step] = c.stepsQueued > queuedSeen;
    queuedSeen = c.stepsQueued;
    const now = performance.now();
    spans.push({ what: `step ${m.step}`, from: now - m.ms, to: now });
    log.push(`step ${m.step}`);
    // asked while step m.step is being reported: they run after the steps in flight (m.step, and m.step + 1 when
    // it was queued), before the next one sent
    if (m.step === 1 || m.step === 3) {
      for (const tower of [0, 1]) {
        tasks.push(
          c.betweenSteps(() =>
            timed(`task tower ${tower}`, async () => {
              const p = await c.clients[tower]!.parameters(); // refused by a worker during a step
              log.push(`task tower ${tower}, steps done ${c.stepsCompleted}`);
              return p.get('conv1')!.w.length;
            }),
          ),
        );
      }
    }
  });
  clearInterval(timer);
  const sizes = await Promise.all(tasks);
  const states = await Promise.all(timerTasks);
  t.is(steps.length, 5);
  t.true(states.length > 0);
  t.deepEqual(states, states.map(() => 'READY'), 'the workers were between steps during every task');
  // no task overlaps a step or another task; two steps are not compared with each other (a step's span is rebuilt
  // from its report, [report - ms, report], and a queued step's time counts from when it was sent, so consecutive
  // steps' rebuilt spans can overlap by the turn of the loop between them without the workers running both at once)
  for (const [i, a] of spans.entries()) {
    for (const b of spans.slice(i + 1)) {
      if (a.what.startsWith('step') && b.what.startsWith('step')) continue;
      t.true(a.to - 1 <= b.from || b.to - 1 <= a.from, `${a.what} and ${b.what} overlap`);
    }
  }
  t.true((await before).length > 0);
  t.deepEqual(sizes, [sizes[0]!, sizes[0]!, sizes[0]!, sizes[0]!]);
  const expected = ['task before run, steps done 0', 'step 0'];
  for (const asked of [1, 3]) {
    const after = nextQueued[asked] ? asked + 1 : asked;
    expected.push(...Array.from({ length: after - asked + 1 }, (_, k) => `step ${asked + k}`), `task tower 0, steps done ${after + 1}`, `task tower 1, steps done ${after + 1}`);
    if (after === asked) expected.push(`step ${asked + 1}`);
  }
  t.log(`step 2 ${nextQueued[1] ? 'was' : 'was not'} queued during step 1, step 4 ${nextQueued[3] ? 'was' : 'was not'} during step 3`);
  t.deepEqual(log, expected);

  // after the run: at once
  t.is(await c.betweenSteps(async () => c.stepsCompleted), 5);
  // during a call outside the run (an evaluation on its own): after it
  const evaluation = c.evaluateBatch(await new SyntheticSource(tiny, 4).batch(0, 4));
  const afterEval = await c.betweenSteps(async () => (await c.clients[0].status()).state);
  t.is(afterEval, 'READY');
  t.is((await evaluation).batch, 4);
});
