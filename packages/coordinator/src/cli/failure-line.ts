/**
 * yargs reports a command line it cannot take (an unknown command or flag, a value outside an option's
 * choices, a missing argument) below the whole help text, reads a number option given a word as NaN (and 0x10
 * as 16), and takes an option given twice as two values (a flag: the last one).
 * This turns each report into one line that names what is wrong as it was typed and where the help is;
 * only a missing command (`alexnet` alone) keeps the list of commands.
 */
import { unknownOptionLine, type KnownOptions } from './unknown-option.js';

/** The options of the command being parsed, as yargs' `getOptions()` gives them (types included). */
export interface ParsedOptions extends KnownOptions {
  array?: string[];
  boolean?: string[];
  number?: string[];
  string?: string[];
  choices?: Record<string, unknown>;
  alias?: Record<string, string[]>;
}

/** An option's name in camelCase, as yargs also takes it (--evalEvery for --eval-every). */
const camel = (n: string): string => n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** An option as it is typed: `-b`, `--batch`. */
const flag = (name: string): string => (name.length === 1 ? `-${name}` : `--${name}`);

/**
 * The line for an option that takes a value given without one, as the last word or before another flag
 * ("--batch needs a value"): yargs drops a number option's missing value (the default then applies without a
 * word), reads a string option's as "" and a choice's as true. Undefined when every such option has its value.
 */
export function missingValueLine(known: ParsedOptions, argv: readonly string[]): string | undefined {
  const takesValue = new Set<string>();
  for (const name of [...(known.number ?? []), ...(known.string ?? []), ...Object.keys(known.choices ?? {})]) {
    for (const n of [name, ...(known.alias?.[name] ?? [])]) takesValue.add(n).add(camel(n));
  }
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    const m = /^--?([^=]+)(=?)$/.exec(word);
    if (!m || /^-\d/.test(word) || !takesValue.has(m[1]!)) continue;
    if (m[2] === '=') return `${word.slice(0, -1)} needs a value`;
    const next = argv[i + 1];
    if (next === undefined || next === '') return `${word} needs a value`;
    // `--` ends the options: whatever follows is an operand, not this option's value
    if (next === '--') return `${word} needs a value (one that starts with '-' is written ${word}=-NAME)`;
    // a negative number as yargs-parser reads one (-3, -0.5, -.5) is a value; any other dash word ('-3s', '-1e3')
    // yargs splits into flags
    if (next.startsWith('-') && !/^-([0-9]+(\.[0-9]+)?|\.[0-9]+)$|^-$/.test(next)) {
      // another option, or a value that starts with '-' (a folder named so)
      const bare = next.replace(/^--?(no-)?/, '').replace(/=.*$/s, '');
      const isKey = (n: string) => n in known.key || camel(n) in known.key;
      // --name, or -x / -xyz whose letters are all short options; else a value (-run: a folder so named)
      const option = next.startsWith('--') ? isKey(bare) : [...next.slice(1).replace(/=.*$/s, '')].every(isKey);
      return option ? `${word} needs a value` : `${word} needs a value (one that starts with '-' is written ${word}=${next})`;
    }
  }
  return undefined;
}

/**
 * Every spelling yargs takes for an option, to the option's own name: its name, its aliases (the longest of
 * them names the option: --help for -h) and the camelCase of each (--evalEvery for --eval-every).
 */
function spellings(known: ParsedOptions): Map<string, string> {
  const own = new Map<string, string>();
  const lists = [Object.keys(known.key), known.array, known.boolean, known.number, known.string, Object.keys(known.choices ?? {})];
  for (const list of lists) for (const name of list ?? []) own.set(name, name);
  for (const [name, aliases] of Object.entries(known.alias ?? {})) {
    const group = [name, ...aliases];
    const main = group.find((n) => n.length > 1) ?? name;
    for (const n of group) own.set(n, main);
  }
  for (const [n, main] of [...own]) if (!own.has(camel(n))) own.set(camel(n), main);
  return own;
}

/** The own names (spellings' values) of the options in `list` (an option type's list of getOptions()). */
const ownNames = (names: ReadonlyMap<string, string>, list: readonly string[] | undefined): Set<string> => new Set((list ?? []).map((n) => names.get(n) ?? n));

/**
 * The option a word of the command line names, by its own name: `--steps`, `--steps=3`, `-b`, `--evalEvery`,
 * and `--no-json` (negated); undefined for an operand, a negative number, a group of short flags (`-xyz`) or
 * an unknown option.
 */
function optionOf(word: string, names: ReadonlyMap<string, string>): { name: string; value: string | undefined; negated: boolean } | undefined {
  const m = /^(--?)([^=]+)(?:=(.*))?$/s.exec(word);
  if (!m || /^-\d/.test(word) || (m[1] === '-' && m[2]!.length > 1)) return undefined;
  const name = names.get(m[2]!);
  if (name !== undefined) return { name, value: m[3], negated: false };
  // yargs reads --no-NAME as NAME false (without a value: `--no-json=true` is no negation)
  const negated = m[1] === '--' && m[3] === undefined ? /^no-(.+)$/s.exec(m[2]!) : null;
  const bare = negated ? names.get(negated[1]!) : undefined;
  return bare === undefined ? undefined : { name: bare, value: undefined, negated: true };
}

/**
 * The line for an option given twice ("--steps is given twice (3 and 5): give it once"): yargs would make an
 * array of the two values and the option's check then names them as one ("got 3,5"); a flag given twice,
 * in either form (`--json --no-json`), would be the last one said without a word. Each spelling of an option
 * (an alias, the camelCase) is the option. Options that take several values may come again; a word after
 * `--` is no option.
 */
export function givenTwiceLine(known: ParsedOptions, argv: readonly string[]): string | undefined {
  const names = spellings(known);
  const many = ownNames(names, known.array);
  const flags = ownNames(names, known.boolean);
  const seen = new Map<string, { typed: string; values: string[]; words: string[] }>();
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    const o = optionOf(word, names);
    if (o === undefined || many.has(o.name) || o.name === 'help' || o.name === 'version') continue;
    const isFlag = flags.has(o.name);
    // --no-steps: not a flag's other form (negatedValueLine names it)
    if (o.negated && !isFlag) continue;
    const next = argv[i + 1];
    // a flag (--json) takes no word after it but true or false (as yargs reads it): any other is the next operand
    const value = o.value ?? (isFlag ? (next === 'true' || next === 'false' ? next : '') : next !== undefined && !next.startsWith('-') ? next : '');
    const entry = seen.get(o.name) ?? { typed: word.replace(/=.*$/s, ''), values: [], words: [] };
    entry.values.push(value);
    entry.words.push(o.value === undefined && value !== '' ? `${word} ${value}` : word);
    seen.set(o.name, entry);
    if (entry.values.length < 2) continue;
    if (isFlag) {
      // a flag said twice the same way is named as typed; said two ways, by its own name and both words as typed
      const [a, b] = entry.words as [string, string];
      return a === b ? `${entry.typed} is given twice: give it once` : `${flag(o.name)} is given twice (${a} and ${b}): give it once`;
    }
    const values = entry.values.filter((v) => v !== '');
    return `${entry.typed} is given twice${values.length === 2 ? ` (${values[0]} and ${values[1]})` : ''}: give it once`;
  }
  return undefined;
}

/** The command the line names, and its usage ("summary <run>"), from the usages of every command ("inspect kernels"). */
export function commandOf(argv: readonly string[], usages: readonly string[]): { name: string; usage: string } | undefined {
  let best: { name: string; usage: string } | undefined;
  for (const usage of usages) {
    const words = usage.split(' ').filter((w) => !/^[<[]/.test(w));
    if (words.every((w, j) => argv[j] === w) && (!best || words.length > best.name.split(' ').length)) best = { name: words.join(' '), usage };
  }
  return best;
}

const unquote = (s: string): string => s.trim().replace(/^"(.*)"$/s, '$1');
const both = (xs: string[]): string => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/**
 * The one line (without "alexnet: ") for a failure yargs reports with `msg`; undefined when the command is
 * missing (the list of commands says more than a line). `argv`: the command line as typed; `usages`: every
 * command's usage string.
 */
export function failureLine(msg: string | null | undefined, known: KnownOptions, argv: readonly string[], usages: readonly string[]): string | undefined {
  const m = msg ?? '';
  const cmd = commandOf(argv, usages);
  const help = `alexnet ${cmd ? `${cmd.name} ` : ''}--help`;
  const typedWord = argv[cmd ? cmd.name.split(' ').length : 0];
  const suggestion = /^Did you mean (.*)\?$/.exec(m);
  // a word where a command belongs: `alexnet lanch`, `alexnet inspect kernals`
  if (typedWord !== undefined && !typedWord.startsWith('-') && (suggestion || (/^Unknown arguments?: /.test(m) && (!cmd || cmd.name === 'inspect')))) {
    return `unknown command ${cmd ? `${cmd.name} ` : ''}${typedWord}${suggestion ? ` (did you mean ${suggestion[1]}?)` : ''}; ${help} lists the commands`;
  }
  // no command: an unknown flag typed at the top (`alexnet --versoin`) is named; else the list of commands says more
  if (!cmd && /^name a command/.test(m)) return unknownOptionLine(m, known, argv);
  // `alexnet inspect --out x.png`: the sub-command's options are not inspect's own; what is missing is the sub-command
  if (cmd?.name === 'inspect' && typedWord?.startsWith('-') && /^name what to inspect/.test(m)) {
    return `name what to inspect before its options: alexnet inspect kernels|activations|predictions|neighbours ${argv.slice(1).join(' ')}; ${help} says more`;
  }
  const unknown = unknownOptionLine(m, known, argv);
  if (unknown) return unknown;
  const usage = cmd ? `usage: alexnet ${cmd.usage} [options]` : 'usage: alexnet <command> [options]';
  const choices = [...m.matchAll(/Argument: (\S+), Given: (.*), Choices: (.*)/g)];
  if (choices.length > 0) {
    return choices.map(([, name, given, list]) => `${flag(name!)} ${unquote(given!)}: choose ${list!.split(/,\s*/).map(unquote).join(', ')}`).join('; ');
  }
  let r: RegExpExecArray | null;
  if ((r = /^Missing required arguments?: (.*)$/.exec(m))) {
    const names = r[1]!.split(/,\s*/).map(flag);
    return `${both(names)} ${names.length === 1 ? 'is' : 'are'} required; ${help} says more`;
  }
  if ((r = /^Missing argument values?: (.*)$/.exec(m))) {
    const names = r[1]!.split(/,\s*/).map(flag);
    return `${both(names)} ${names.length === 1 ? 'needs a value' : 'need values'}; ${help} says more`;
  }
  if ((r = /^Not enough non-option arguments: got (\d+)/.exec(m)) || /^Not enough non-option arguments/.test(m)) {
    // those given are the first ones: only the rest are missing ("compare A": <b>)
    const given = r ? Number(r[1]) : 0;
    const wanted = (cmd?.usage.split(' ').filter((w) => /^</.test(w)).slice(given) ?? []).join(' ');
    return `missing ${wanted || 'arguments'} (${usage}); ${help} says more`;
  }
  if ((r = /^Too many non-option arguments: got (\d+), maximum of (\d+)/.exec(m))) {
    return `${r[1]} arguments where the command takes ${r[2]} (${usage}); ${help} says more`;
  }
  if ((r = /^Arguments (\S+) and (\S+) are mutually exclusive/.exec(m))) return `${flag(r[1]!)} and ${flag(r[2]!)} cannot be given together`;
  if ((r = /^Missing dependent arguments:\s*(\S+) -> (\S+)/.exec(m))) return `${flag(r[1]!)} needs ${flag(r[2]!)}; ${help} says more`;
  return `${m.split('\n').map((l) => l.trim()).filter(Boolean).join(' ')}; ${help} says more`;
}

/**
 * The line for `--no-NAME` of an option that takes a value ("--no-data: --data takes a value, not on or off",
 * "--no-steps: --steps takes a number, ..."): yargs would set it to false (a number option's to 0), which no
 * such option means.
 */
export function negatedValueLine(known: ParsedOptions, argv: readonly string[]): string | undefined {
  const names = spellings(known);
  const flags = ownNames(names, known.boolean);
  const numbers = ownNames(names, known.number);
  for (const word of argv) {
    if (word === '--') break;
    const o = optionOf(word, names);
    if (o === undefined || !o.negated || flags.has(o.name)) continue;
    return `${word}: ${flag(o.name)} takes ${numbers.has(o.name) ? 'a number' : 'a value'}, not on or off`;
  }
  return undefined;
}

/** A number as it is written for a person: digits with an optional sign, decimal point and exponent (16, -0.5, .5, 1e-4). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A word yargs takes as the value of the option before it (a negative number is one: `--lr -0.5`). */
const isValueWord = (w: string): boolean => !w.startsWith('-') || /^-([0-9]+(\.[0-9]+)?|\.[0-9]+)$/.test(w);

/** A value as typed, quoted when it would not show on the line (empty, or with spaces). */
const shown = (v: string): string => (v === '' || /[\s\x00-\x1f\x7f]/.test(v) ? JSON.stringify(v) : v);

/**
 * What is wrong with `word` as the value of a number option ("give a number"); undefined for a decimal
 * number. yargs reads a number option's value with JavaScript's Number(), which also takes 0x10, 0b1 and
 * 0o7, Infinity, and "" or " " (as 0): none is a number as anyone writes one on a command line.
 */
function numberProblem(word: string): string | undefined {
  if (DECIMAL.test(word)) return Number.isFinite(Number(word)) ? undefined : 'give a finite number';
  return /^[+-]?0[xob]/i.test(word) ? 'give a decimal number' : 'give a number';
}

/**
 * The line for a number option given something that is not a decimal number (yargs makes a word NaN, "got
 * NaN" would say nothing; it reads 0x10 as 16), naming the value as typed: "--batch
 * abc: give a number", "--steps 0x10: give a decimal number"; undefined when every number is one.
 */
export function notANumberLine(parsed: Record<string, unknown>, known: ParsedOptions, argv: readonly string[]): string | undefined {
  const names = spellings(known);
  const numbers = ownNames(names, known.number);
  // each value typed for a number option (--name WORD or --name=WORD, an alias or the camelCase spelling)
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    const o = optionOf(word, names);
    // --no-steps: negatedValueLine names it
    if (o === undefined || o.negated || !numbers.has(o.name)) continue;
    let value = o.value;
    if (value === undefined) {
      const next = argv[i + 1];
      // no value (missingValueLine names it)
      if (next === undefined || !isValueWord(next)) continue;
      value = next;
      i++;
    }
    const problem = numberProblem(value);
    if (problem) return `${flag(o.name)} ${shown(value)}: ${problem}`;
  }
  // a NaN whose word was not found above
  for (const name of known.number ?? []) {
    const v = parsed[name];
    const values = Array.isArray(v) ? v : [v];
    if (values.some((x) => typeof x === 'number' && Number.isNaN(x))) return `${flag(names.get(name) ?? name)}: give a number`;
  }
  return undefined;
}
