import test from 'ava';
import { describeEnds } from '../src/launch.js';

const ended = (name: string, how: string) => ({ name, describeExit: () => how });

test('the last line of launch names how each process ended, a restarted one with how its earlier runs ended', (t) => {
  t.is(
    describeEnds([ended('worker0', 'exited with code 0'), ended('worker1', 'killed by signal SIGKILL'), ended('coord', 'exited with code 130'), ended('worker1', 'exited with code 0')]),
    'worker0 exited with code 0, worker1 exited with code 0 (restarted after: killed by signal SIGKILL), coord exited with code 130',
  );
  t.is(
    describeEnds([ended('coord', 'killed by signal SIGKILL'), ended('coord', 'exited with code 1'), ended('coord', 'exited with code 143')]),
    'coord exited with code 143 (restarted after: killed by signal SIGKILL, then exited with code 1)',
  );
  t.is(describeEnds([ended('worker0', 'exited with code 0')]), 'worker0 exited with code 0');
});
