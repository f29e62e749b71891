/**
 * The benchmarks' command lines, as the `alexnet` command's: a mistake is one line naming it (not yargs' help text
 * with the error below it), and the counts and sizes they take are checked (a step count of 0 or a negative batch
 * would print Infinity images/s, or fail deep in a kernel with a stack trace).
 */
import path from 'node:path';
import type { Argv } from 'yargs';
import { checkEnvSettings } from '@alexnet-mp/core';
import { isUserError } from '@alexnet-mp/coordinator';

/** 'count': a whole number >= 1 (steps, batch, iterations); 'count0': >= 0 (warm-up steps); 'ms': a number >= 0; N: a whole number >= N. */
export type NumberRule = 'count' | 'count0' | 'ms' | number;

const least = (rule: NumberRule): number => (rule === 'count' ? 1 : rule === 'count0' || rule === 'ms' ? 0 : rule);
const wants = (rule: NumberRule): string => (rule === 'ms' ? 'a number of 0 or more' : `a whole number of ${least(rule)} or more`);

function fits(v: number, rule: NumberRule): boolean {
  if (!Number.isFinite(v) || v < least(rule)) return false;
  return rule === 'ms' || Number.isInteger(v);
}

/** The value typed for option `name` (`--name V` or `--name=V`), the last one; undefined when not typed. */
function typedValue(name: string, argv: readonly string[]): string | undefined {
  let typed: string | undefined;
  argv.forEach((w, i) => {
    if (w === `--${name}`) typed = argv[i + 1];
    else if (w.startsWith(`--${name}=`)) typed = w.slice(name.length + 3);
  });
  return typed;
}

/** What is wrong with option `name`'s value `v` by `rule` (named as typed in `argv`); undefined when it fits (or was not given). */
export function numberProblem(name: string, v: unknown, rule: NumberRule, argv: readonly string[] = []): string | undefined {
  if (v === undefined) return undefined;
  const values = Array.isArray(v) ? v : [v];
  const bad = values.find((x) => typeof x !== 'number' || !fits(x, rule));
  return bad === undefined ? undefined : `--${name} ${Number.isNaN(bad) ? (typedValue(name, argv) ?? 'NaN') : String(bad)}: give ${wants(rule)}`;
}

/** The benchmark's name as the user typed it (`npm run bench` runs main.ts). */
const scriptName = (): string => (process.env.npm_lifecycle_event === 'bench' ? 'bench' : path.basename(process.argv[1] ?? 'bench'));

let userErrorsSaid = false;
/** From now on, a user's error (the alexnet command's isUserError) that ends the benchmark is one line, exit 2 (any other keeps its stack). */
export function sayUserErrors(): void {
  if (userErrorsSaid) return;
  userErrorsSaid = true;
  process.on('uncaughtException', (e: unknown) => {
    if (isUserError(e)) {
      process.stderr.write(`${scriptName()}: ${e.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}

/** `y` with each option of `rules` checked, and every failure of the command line said in one line, exit 2. */
export function benchArgs<T>(y: Argv<T>, rules: Record<string, NumberRule>): Argv<T> {
  sayUserErrors();
  // an ALEXNET_* setting the kernels would refuse: said before anything runs
  checkEnvSettings();
  const script = scriptName();
  const argv = process.argv.slice(2);
  return y
    .version(false)
    .check((a) => {
      for (const [name, rule] of Object.entries(rules)) {
        const problem = numberProblem(name, (a as Record<string, unknown>)[name], rule, argv);
        if (problem) throw new Error(problem);
      }
      return true;
    })
    .fail((msg, err) => {
      const line = (msg || err?.message || 'bad command line')
        .replace(/^Unknown arguments?: (.*)$/s, (_, names: string) => `unknown option ${names.split(/,\s*/).map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(', ')}`)
        .replace(/^Not enough non-option arguments.*$/s, 'an argument is missing (the usage is on --help)')
        .replace(/^Invalid values?:\s*Argument: (\S+), Given: "?([^"]*)"?, Choices: (.*)$/s, (_, name: string, given: string, list: string) => `--${name} ${given}: choose ${list.replace(/"/g, '')}`);
      process.stderr.write(`${script}: ${line}; --help lists the options\n`);
      process.exit(2);
    });
}
