/** failure-line.ts: yargs' reports as one line, and a word given for a number named as typed. */
import test from 'ava';
import { commandOf, failureLine, missingValueLine, notANumberLine } from '../src/cli/failure-line.js';

const usages = ['launch', 'summary <run>', 'predict <images..>', 'inspect', 'inspect kernels', 'verify <target>', 'compare <a> <b>'];
const known = { key: { batch: true, b: true, lr: true, preset: true, help: true } };

test('the command named is the longest usage the command line starts with', (t) => {
  t.deepEqual(commandOf(['inspect', 'kernels', '--run', 'r'], usages), { name: 'inspect kernels', usage: 'inspect kernels' });
  t.deepEqual(commandOf(['inspect'], usages), { name: 'inspect', usage: 'inspect' });
  t.deepEqual(commandOf(['summary', 'runs/a'], usages), { name: 'summary', usage: 'summary <run>' });
  t.is(commandOf(['lanch'], usages), undefined);
});

test("each of yargs' reports is one line naming the option as typed and the help", (t) => {
  const line = (msg: string, argv: string[]) => failureLine(msg, known, argv, usages);
  t.is(line('Invalid values:\n  Argument: preset, Given: "huge", Choices: "paper", "cifar", "tiny"', ['launch', '--preset', 'huge']), '--preset huge: choose paper, cifar, tiny');
  t.is(
    line('Invalid values:\n  Argument: a, Given: "x", Choices: "p", "q"\n  Argument: b, Given: "y", Choices: "r"', ['launch']),
    '-a x: choose p, q; -b y: choose r',
  );
  t.is(line('Missing required argument: out', ['launch']), '--out is required; alexnet launch --help says more');
  t.is(line('Missing required arguments: run, out', ['launch']), '--run and --out are required; alexnet launch --help says more');
  t.is(line('Missing argument value: lr', ['launch']), '--lr needs a value; alexnet launch --help says more');
  t.is(line('Not enough non-option arguments: got 0, need at least 1', ['verify']), 'missing <target> (usage: alexnet verify <target> [options]); alexnet verify --help says more');
  t.is(line('Not enough non-option arguments: got 1, need at least 2', ['compare', 'a.safetensors']), 'missing <b> (usage: alexnet compare <a> <b> [options]); alexnet compare --help says more', 'the first one given');
  t.is(line('Too many non-option arguments: got 3, maximum of 1', ['verify', 'a', 'b', 'c']), '3 arguments where the command takes 1 (usage: alexnet verify <target> [options]); alexnet verify --help says more');
  t.is(line('Arguments run and model are mutually exclusive', ['inspect', 'kernels']), '--run and --model cannot be given together');
  t.is(line('Missing dependent arguments:\n step -> run', ['inspect', 'kernels']), '--step needs --run; alexnet inspect kernels --help says more');
  t.is(line('Did you mean launch?', ['lanch']), 'unknown command lanch (did you mean launch?); alexnet --help lists the commands');
  t.is(line('Unknown argument: kernals', ['inspect', 'kernals']), 'unknown command inspect kernals; alexnet inspect --help lists the commands');
  // an unknown flag keeps its own line (unknown-option.ts)
  t.is(line('Unknown arguments: bach, bach', ['launch', '--bach', '8']), 'unknown option --bach (did you mean --batch?); --help lists them');
  // anything else: yargs' words on one line
  t.is(line('Something new:\n  in two lines', ['launch']), 'Something new: in two lines; alexnet launch --help says more');
  // no command at all: the list of commands says more than a line
  t.is(line('name a command (see the list above)', []), undefined);
});

test('a number option given a word is named with the word as typed', (t) => {
  const opts = { key: {}, number: ['batch', 'lr', 'eval-every'], alias: { batch: ['b'] } };
  t.is(notANumberLine({ batch: NaN }, opts, ['launch', '--batch', 'abc']), '--batch abc: give a number');
  t.is(notANumberLine({ batch: NaN }, opts, ['launch', '-b', 'xyz']), '--batch xyz: give a number');
  t.is(notANumberLine({ lr: NaN }, opts, ['launch', '--lr=fast']), '--lr fast: give a number');
  t.is(notANumberLine({ 'eval-every': [5, NaN] }, opts, ['launch', '--eval-every', '5', '--eval-every', 'x']), '--eval-every x: give a number');
  t.is(notANumberLine({ batch: 16, lr: 0.1 }, opts, ['launch', '--batch', '16']), undefined);
  t.is(notANumberLine({ batch: undefined }, opts, ['launch']), undefined);
});

test('an option that takes a value, given none, is named', (t) => {
  const opts = { key: { batch: true, b: true, lr: true, data: true, preset: true }, number: ['batch', 'lr'], string: ['data'], choices: { preset: ['tiny'] }, alias: { batch: ['b'] } };
  t.is(missingValueLine(opts, ['launch', '--batch']), '--batch needs a value');
  t.is(missingValueLine(opts, ['launch', '-b', '--data', 'x']), '-b needs a value');
  t.is(missingValueLine(opts, ['launch', '--data', '-odd-folder']), "--data needs a value (one that starts with '-' is written --data=-odd-folder)");
  t.is(missingValueLine(opts, ['launch', '--data', '--', '-odd-folder']), "--data needs a value (one that starts with '-' is written --data=-NAME)", 'after --, an operand');
  t.is(missingValueLine(opts, ['launch', '--lr', '-.5']), undefined, 'a negative number without its 0 is a value');
  t.is(missingValueLine({ ...opts, string: ['run-dir'] }, ['launch', '--runDir']), '--runDir needs a value', 'the camelCase spelling yargs also takes');
  t.is(missingValueLine(opts, ['launch', '--data']), '--data needs a value');
  t.is(missingValueLine(opts, ['launch', '--data', '', '--batch', '8']), '--data needs a value', "an empty word (--data '')");
  t.is(missingValueLine(opts, ['launch', '--data', '-3s']), "--data needs a value (one that starts with '-' is written --data=-3s)", 'a dash word that is not a number');
  t.is(missingValueLine(opts, ['launch', '--batch', '-3']), undefined, 'a negative number is a value (its check says what is wrong with it)');
  t.is(missingValueLine(opts, ['launch', '--batch', '-0.5']), undefined);
  t.is(missingValueLine(opts, ['launch', '--batch', '-1.5e3']), "--batch needs a value (one that starts with '-' is written --batch=-1.5e3)", 'no exponent in what yargs reads as a negative number');
  t.is(missingValueLine(opts, ['launch', '--preset', '--batch', '8']), '--preset needs a value');
  t.is(missingValueLine(opts, ['launch', '--batch=']), '--batch needs a value');
  t.is(missingValueLine(opts, ['launch', '--lr', '-1', '--batch', '8', '--data', 'x', '--preset', 'tiny']), undefined, 'a negative number is a value');
  t.is(missingValueLine(opts, ['launch', '--verbose', '--', '--batch']), undefined, 'nothing after --');
});
