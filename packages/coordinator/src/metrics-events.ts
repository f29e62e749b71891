/**
 * What a line of a run's metrics.jsonl must hold to be read (summary, export-metrics, the dashboard): a JSON
 * object naming its event, and for the events the readers compute with, those numbers. A line that is JSON but
 * not such an event (written by hand, by another tool, or cut and mended) is left out, and said, rather than
 * failing a reader part way.
 */

const count = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 0;
const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);

/** The fields each event must have, and what each must be. */
const NEEDS: Record<string, readonly [string, (x: unknown) => boolean, string][]> = {
  step: [
    ['step', count, 'a step number'],
    ['loss', finite, 'a number'],
  ],
  // an evaluation's loss may be null (an overflow the coordinator logs as it is): its errors still count
  eval: [
    ['step', count, 'a step number'],
    ['top1_error', finite, 'a number'],
  ],
  checkpoint: [['step', count, 'a step number']],
};

/** Why `e` (a parsed line) is not an event the readers can use, in words; null when it is. */
export function eventProblem(e: unknown): string | null {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'not a JSON object';
  const o = e as Record<string, unknown>;
  if (typeof o.event !== 'string') return 'no "event" name';
  const a = /^[aeiou]/.test(o.event) ? 'an' : 'a';
  for (const [field, ok, what] of NEEDS[o.event] ?? []) if (!ok(o[field])) return `${a} ${o.event} line whose ${field} is not ${what}`;
  if (o.start_step !== undefined && o.event === 'run' && !count(o.start_step)) return 'a run line whose start_step is not a step number';
  if (o.event === 'restart' && o.from_step !== undefined && !count(o.from_step)) return 'a restart line whose from_step is not a step number';
  return null;
}

/** Counts the lines left out of a log and says them in one line (the first few by number and why). */
export class LeftOut {
  private readonly lines: { line: number; why: string }[] = [];

  add(line: number, why: string): void {
    this.lines.push({ line, why });
  }

  /** "3 lines of FILE left out (line 4: not JSON; line 9: a step line whose loss is not a number; ...)", or null. */
  describe(file: string): string | null {
    if (this.lines.length === 0) return null;
    const first = this.lines.slice(0, 3).map((l) => `line ${l.line}: ${l.why}`);
    const more = this.lines.length > 3 ? `; ${this.lines.length - 3} more` : '';
    return `${this.lines.length} line${this.lines.length === 1 ? '' : 's'} of ${file} left out (${first.join('; ')}${more})`;
  }
}
