/**
 * yargs reports a command line it cannot take (an unknown command or flag, a value outside an option's
 * choices, a missing argument) below the whole help text, and reads a number option given a word as NaN.
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

/**
 * The line for an option that takes a value given without one, as the last word or before another flag
 * ("--batch needs a value"): yargs drops a number option's missing value (the default then applies without a
 * word), reads a string option's as "" and a choice's as true. Undefined when every such option has its value.
 */
export function missingValueLine(known: ParsedOptions, argv: readonly string[]): string | undefined {
  const takesValue = new Set<string>();
  const camel = (n: string) => n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
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
 * The line for an option given twice ("--steps is given twice (3 and 5): give it once"): yargs would make an
 * array of the two values and the option's check then names them as one ("got 3,5"). Options that take
 * several values (`--micro-batches 1 2 4`) may come again; a word after `--` is no option.
 */
export function givenTwiceLine(known: ParsedOptions, argv: readonly string[]): string | undefined {
  const camel = (n: string) => n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const canonical = new Map<string, string>();
  for (const name of Object.keys(known.key)) canonical.set(name, name);
  for (const [name, aliases] of Object.entries(known.alias ?? {})) for (const a of aliases) canonical.set(a, name);
  const many = new Set((known.array ?? []).flatMap((n) => [n, camel(n)]));
  const flags = new Set((known.boolean ?? []).flatMap((n) => [n, camel(n)]));
  const seen = new Map<string, { typed: string; values: string[] }>();
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(word);
    if (!m || /^-\d/.test(word) || (word.startsWith('-') && !word.startsWith('--') && m[1]!.length > 1)) continue;
    const name = canonical.get(m[1]!) ?? canonical.get(camel(m[1]!));
    if (name === undefined || many.has(name) || name === 'help' || name === 'version') continue;
    const next = argv[i + 1];
    // a flag (--json) takes no word after it: that is the next operand
    const value = m[2] ?? (!flags.has(name) && next !== undefined && !next.startsWith('-') ? next : '');
    const entry = seen.get(name) ?? { typed: word.replace(/=.*$/s, ''), values: [] };
    entry.values.push(value);
    seen.set(name, entry);
    if (entry.values.length === 2) {
      const values = entry.values.filter((v) => v !== '');
      return `${entry.typed} is given twice${values.length === 2 ? ` (${values[0]} and ${values[1]})` : ''}: give it once`;
    }
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
const flag = (name: string): string => (name.length === 1 ? `-${name}` : `--${name}`);
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
 * The line for a number option given something that is not a number (yargs makes it NaN: "got NaN" would
 * say nothing), naming the value as typed: "--batch abc: give a number"; undefined when every number is one.
 */
export function notANumberLine(parsed: Record<string, unknown>, known: ParsedOptions, argv: readonly string[]): string | undefined {
  for (const name of known.number ?? []) {
    const v = parsed[name];
    const values = Array.isArray(v) ? v : [v];
    if (!values.some((x) => typeof x === 'number' && Number.isNaN(x))) continue;
    // the word typed for it (--name WORD or --name=WORD, or an alias) that is not a number
    const flags = [name, ...(known.alias?.[name] ?? [])].map(flag);
    const typed = argv
      .flatMap((w, i) => flags.flatMap((f) => (w === f ? [argv[i + 1] ?? ''] : w.startsWith(`${f}=`) ? [w.slice(f.length + 1)] : [])))
      .find((v) => v !== '' && Number.isNaN(Number(v)));
    return `${flag(name)}${typed === undefined ? '' : ` ${typed}`}: give a number`;
  }
  return undefined;
}
