/** coordinator-restart.ts: which deaths of a coordinator launch undoes, and the command line it starts again. */
import test from 'ava';
import { CRASH_SIGNALS, crashed, restartPlan } from '../src/coordinator-restart.js';

test('a death by a signal the coordinator does not handle is a crash; an exit code or a handled signal is its own end', (t) => {
  for (const signal of CRASH_SIGNALS) t.true(crashed({ code: null, signal }), signal);
  t.true(crashed({ code: null, signal: 'SIGKILL' }));
  t.true(crashed({ code: null, signal: 'SIGABRT' }), 'Node.js out of heap memory aborts');
  for (const code of [0, 1, 2, 129, 130, 143]) t.false(crashed({ code, signal: null }), `exit code ${code}`);
  // SIGTERM/SIGINT/SIGHUP are handled (the run ends with a checkpoint, exit 143/130/129); one that still kills it was meant
  t.false(crashed({ code: null, signal: 'SIGTERM' }));
  t.false(crashed(null), 'still running');
});

test('started again: the same options, resuming the run folder from its checkpoint, with what is left of --stop-after', (t) => {
  const args = ['--preset', 'tiny', '--steps=30', '--run-dir=/runs/a', '--checkpoint-every=5', '--stop-after=2h', '--max-restarts', '3'];
  const plan = restartPlan({ args, runDir: '/runs/a', checkpointStep: 10, stopAfterLeftS: 3599.2 });
  t.deepEqual(plan, {
    args: ['--preset', 'tiny', '--steps=30', '--checkpoint-every=5', '--max-restarts', '3', '--resume=/runs/a', '--stop-after=3600s', '--stop-after-given=2h'],
    from: 'its last checkpoint, step 10',
  });
  // restarted again: the time left then, the --stop-after first given still named in the run's messages
  const twice = restartPlan({ args: (plan as { args: string[] }).args, runDir: '/runs/a', checkpointStep: 20, stopAfterLeftS: 1800 });
  t.deepEqual('args' in twice && twice.args.slice(-3), ['--resume=/runs/a', '--stop-after=1800s', '--stop-after-given=2h']);
  // a run launched with --resume (two words or one): the same folder, once
  const again = restartPlan({ args: ['--resume', '/runs/b', '--steps=9'], runDir: '/runs/b', checkpointStep: 4, stopAfterLeftS: null });
  t.deepEqual('args' in again && again.args, ['--steps=9', '--resume=/runs/b']);
});

test('started again before any checkpoint: from step 0 in the same folder; not at all once --stop-after is up', (t) => {
  const plan = restartPlan({ args: ['--steps=30', '--run-dir=/runs/a'], runDir: '/runs/a', checkpointStep: null, stopAfterLeftS: null });
  t.deepEqual(plan, { args: ['--steps=30', '--run-dir=/runs/a'], from: 'step 0 (no checkpoint of this run yet)' });
  t.deepEqual(restartPlan({ args: ['--run-dir=/r', '--stop-after=60'], runDir: '/r', checkpointStep: 3, stopAfterLeftS: 0.4 }), { refused: 'its --stop-after time is up' });
  // a run forked from another's checkpoint (--resume OTHER --run-dir NEW) that wrote none yet: from OTHER's again, not from scratch
  const forked = restartPlan({ args: ['--resume=/runs/old', '--run-dir=/runs/new', '--stop-after=2h', '--steps=90'], runDir: '/runs/new', checkpointStep: null, stopAfterLeftS: 7000 });
  t.deepEqual(forked, { args: ['--resume=/runs/old', '--run-dir=/runs/new', '--steps=90', '--stop-after=7000s', '--stop-after-given=2h'], from: 'the checkpoint it was started from (no checkpoint of this run yet)' });
});

test('resumed from a chosen earlier checkpoint and crashed before its course began: from that checkpoint again, not the newest of the course it leaves', (t) => {
  const file = '/runs/a/checkpoints/step-000000300.safetensors';
  const plan = restartPlan({ args: ['--resume', file, '--lr=0.005'], runDir: '/runs/a', checkpointStep: 900, stopAfterLeftS: null, pinnedStep: 300 });
  t.deepEqual(plan, { args: ['--resume', file, '--lr=0.005'], from: 'the checkpoint it was resumed from, step 300 (not the newest, step 900, of the course it leaves)' });
  t.is((restartPlan({ args: ['--resume', file], runDir: '/runs/a', checkpointStep: 300, stopAfterLeftS: null, pinnedStep: 300 }) as { from: string }).from, 'the checkpoint it was resumed from, step 300', 'the newest itself: no course to leave');
  // once the course began (the later checkpoints set aside), the newest is the new course's
  const begun = restartPlan({ args: ['--resume', file, '--lr=0.005'], runDir: '/runs/a', checkpointStep: 400, stopAfterLeftS: null, pinnedStep: null });
  t.deepEqual(begun, { args: ['--lr=0.005', '--resume=/runs/a'], from: 'its last checkpoint, step 400' });
});
