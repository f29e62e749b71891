/** operands.ts: the words after `--` reach a command's positionals with their dashes. */
import test from 'ava';
import { operandsAfterDashes } from '../src/cli/operands.js';

test('the words after `--` stand in for themselves without a dash, and come back in the parsed values', (t) => {
  const o = operandsAfterDashes(['predict', 'a.jpg', '--top', '1', '--', '-b.jpg', '--json']);
  t.is(o.argv.length, 6, 'the `--` is gone, each operand one word');
  t.deepEqual(o.argv.slice(0, 4), ['predict', 'a.jpg', '--top', '1']);
  t.false(o.argv.slice(4).some((w) => w.startsWith('-')));
  const parsed: Record<string, unknown> = { images: ['a.jpg', o.argv[4], o.argv[5]], top: 1, _: ['predict'] };
  o.restoreAll(parsed);
  t.deepEqual(parsed, { images: ['a.jpg', '-b.jpg', '--json'], top: 1, _: ['predict'] });
  t.is(o.restore(`unknown command ${o.argv[4]}`), 'unknown command -b.jpg');
});

test('no `--`, or one before any command: the command line as it is', (t) => {
  t.deepEqual(operandsAfterDashes(['summary', 'runs/a']).argv, ['summary', 'runs/a']);
  t.deepEqual(operandsAfterDashes(['--', 'summary']).argv, ['--', 'summary']);
  t.deepEqual(operandsAfterDashes(['--verbose', '--', 'x']).argv, ['--verbose', '--', 'x']);
});
