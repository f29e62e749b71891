/**
 * yargs' strict mode reports an unknown flag as "Unknown argument: bach" below the whole help text.
 * This turns that report into one line naming the flag as typed and the closest valid one.
 */

/** The options yargs knows in the current command (`key`: every name, aliases included). */
export interface KnownOptions {
  key: Record<string, unknown>;
}

/** The options of the command being parsed: yargs' `getOptions()`, which its types do not declare. */
export function optionsOf(cli: object): KnownOptions {
  return (cli as { getOptions(): KnownOptions }).getOptions();
}

/** Edit distance (insertions, deletions, substitutions, transpositions of neighbours). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The valid long flag closest to `name` (typed without dashes), when close enough to be a likely misspelling. */
export function closestOption(typed: string, known: KnownOptions): string | undefined {
  // --JSON is most likely --json: compared without case
  const name = typed.toLowerCase();
  const bare = name.replace(/^no-/, '');
  if (bare.length < 2) return undefined;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of Object.keys(known.key)) {
    if (candidate.length === 1) continue;
    const distance = Math.min(editDistance(name, candidate), editDistance(bare, candidate));
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  if (!best) return undefined;
  const bound = Math.max(1, Math.min(3, Math.floor(bare.length / 2)));
  return best.distance <= bound || best.name.startsWith(bare) || bare.startsWith(best.name) ? `--${best.name}` : undefined;
}

/** Whether `name` (as typed after the dashes, camelCase allowed) is one of the known options. */
function isKnown(name: string, known: KnownOptions): boolean {
  // --evalEvery is --eval-every; --JSON or --Steps is no option (yargs matches names as written)
  const kebab = name.replace(/([a-z0-9])([A-Z])/g, (_, a: string, b: string) => `${a}-${b.toLowerCase()}`);
  return [name, kebab].some((n) => n in known.key || (n.startsWith('no-') && n.slice(3) in known.key));
}

/** The flags on a command line that the command does not know, as typed (`--bach`, `-q`). */
export function unknownFlags(argv: readonly string[], known: KnownOptions): string[] {
  const unknown: string[] = [];
  for (const arg of argv) {
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) continue;
    const typed = arg.replace(/=.*$/s, '');
    if (typed.startsWith('--')) {
      if (!isKnown(typed.slice(2), known)) unknown.push(typed);
    } else {
      for (const letter of typed.slice(1)) if (!isKnown(letter, known)) unknown.push(`-${letter}`);
    }
  }
  return [...new Set(unknown)];
}

/**
 * The one line for a command line with flags its command does not know (whatever yargs found
 * wrong first: a misspelt required option is reported as unknown, not as missing), or for
 * stray arguments; undefined for any other failure (a missing command keeps yargs' help text).
 * `argv` is the command line as given, to name each flag as the user typed it.
 */
export function unknownOptionLine(msg: string | null | undefined, known: KnownOptions, argv: readonly string[]): string | undefined {
  if (/^Did you mean /.test(msg ?? '')) return undefined;
  const flags = unknownFlags(argv, known);
  if (flags.length > 0) {
    // a word after one dash whose letters are not all options is more likely a name that starts with '-': said as
    // one word, not letter by letter
    const word = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length).find((a) => /^-[^-\d].+/.test(a) && !/=/.test(a) && [...a.slice(1)].some((l) => flags.includes(`-${l}`)));
    const inWord = new Set(word ? [...word.slice(1)].map((l) => `-${l}`) : []);
    const parts = flags
      .filter((typed) => !inWord.has(typed))
      .map((typed) => {
        const suggestion = closestOption(typed.replace(/^--?/, ''), known);
        return `unknown option ${typed}${suggestion ? ` (did you mean ${suggestion}?)` : ''}`;
      });
    if (word) parts.push(`unknown options ${word}`);
    const name = word ? `; a file or folder named ${word} is written ./${word} (or after --)` : '';
    return `${parts.join(', ')}; --help lists them${name}`;
  }
  const m = /^Unknown arguments?: (.*)$/.exec(msg ?? '');
  return m ? `unexpected argument${m[1]!.includes(', ') ? 's' : ''} ${m[1]}; --help says what the command takes` : undefined;
}
