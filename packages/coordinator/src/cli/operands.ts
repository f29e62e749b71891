/**
 * `--` ends the options: the words after it are operands, even those that start with a dash (`alexnet
 * predict -- -scan.jpg`, `alexnet summary -- -run`). yargs puts them in `_` rather than in a command's
 * positionals, so a demanded `<run>` would be missing; here each becomes a stand-in word without a dash
 * that yargs takes as a positional like any other, and the parsed values get the words back.
 */

/** A stand-in no one types: the unit separator around the operand's number. */
const standIn = (i: number) => `\u001f${i}\u001f`;
const STAND_IN = /\u001f(\d+)\u001f/g;

export interface Operands {
  /** The command line for yargs: the operands after the first `--` in place of it, as stand-ins. */
  readonly argv: string[];
  /** A parsed value with the operands back in it (strings, arrays of them, and anything else as it is). */
  restore<T>(value: T): T;
  /** Every parsed value of `parsed` restored in place. */
  restoreAll(parsed: Record<string, unknown>): void;
}

export function operandsAfterDashes(given: readonly string[]): Operands {
  // only after a command: `alexnet -- summary` names no command, as yargs says
  const dashes = given.indexOf('--');
  const at = dashes > 0 && given.slice(0, dashes).some((w) => !w.startsWith('-')) ? dashes : -1;
  const operands = at < 0 ? [] : given.slice(at + 1);
  const argv = at < 0 ? [...given] : [...given.slice(0, at), ...operands.map((_, i) => standIn(i))];
  const text = (s: string) => s.replace(STAND_IN, (_, i: string) => operands[Number(i)] ?? '');
  const restore = <T>(value: T): T => {
    if (typeof value === 'string') return text(value) as T;
    if (Array.isArray(value)) return value.map((v) => restore(v)) as T;
    return value;
  };
  return {
    argv,
    restore,
    restoreAll(parsed) {
      if (operands.length === 0) return;
      for (const [k, v] of Object.entries(parsed)) parsed[k] = restore(v);
    },
  };
}
