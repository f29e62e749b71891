/**
 * What a run folder's metrics.jsonl says, for a person: the run's sessions (each launch or
 * --resume, with its wall time), the steps done of those planned, and a table per epoch (or per
 * N steps) of the training loss and error and the held-out evaluations. A resumed run continues
 * from its checkpoint: the steps (and evaluations) an earlier session logged after that point were
 * abandoned, and only the resumed run's count.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import path from 'node:path';
import { UserError } from './cli/errors.js';
import { median } from '@alexnet-mp/core';
import { layerNormTotals } from './layer-norms.js';
import { rewoundTo } from './run-rewind.js';
import { classesOfPreset, errorWords, pct, topFiveMeaningful } from './error-words.js';
import type { LayerNormsRow } from './coordinator-types.js';
import { LeftOut, eventProblem } from './metrics-events.js';

interface RunEvent {
  event: 'run';
  run_id: string;
  preset: string;
  steps: number;
  start_step: number;
  epochs: number | null;
  steps_per_epoch: number | null;
  batch: number;
  data: string;
  started?: string;
  workers?: { backend: string }[];
  /** The run's held-out evaluation: null when it has none (absent in logs older than it). */
  eval?: { every: number } | null;
}
interface StepEvent {
  event: 'step';
  step: number;
  lr: number;
  loss: number;
  /** Share of the batch not classified right (top-1 error), as step lines say it since 2026-12-04. */
  top1_error?: number;
  /** Older logs: the share classified right (top-1 accuracy), read as error 1 - top1. */
  top1?: number;
  ms: number;
  /** Each worker's figures; `rss_mib` (resident memory after the step) from builds since 2026-12-05. */
  workers?: { tower: number; rss_mib?: number }[];
  /** Every --norms-every steps: each layer's norms after the update, per tower. */
  layer_norms?: LayerNormsRow[];
}

/** A step line's training top-1 error, from either naming (top1_error, or an old log's accuracy top1). */
const stepError = (m: StepEvent): number => (typeof m.top1_error === 'number' ? m.top1_error : 1 - Number(m.top1));
interface EvalEvent {
  event: 'eval';
  step: number;
  loss: number;
  top1_error: number;
  top5_error: number;
  images: number;
  views?: number;
  ms?: number;
}
type Event = RunEvent | StepEvent | EvalEvent | { event: string; [k: string]: unknown };

export interface Session {
  readonly runId: string;
  readonly started: string | null;
  readonly backend: string | null;
  readonly fromStep: number;
  /** Steps done by the end of the session (the last step logged + 1). */
  readonly toStep: number;
  /** Wall time of the session's training (its "done" line), or the sum of its steps and evaluations when it has none. */
  readonly seconds: number;
  /** How it ended: "done", "stopped: REASON", "failed", "killed" (a later session followed; "killed; steps A-B done again" when it redid them) or "running or killed" (the last, with no end line); an ended one a later session resumed from an earlier step says which of its steps were done again. */
  readonly end: string;
  /**
   * Median step time of the session's first and of its last SESSION_PACE_STEPS steps (the same steps when it
   * ran fewer): whether a long-running session slowed down. Null when it logged no step.
   */
  readonly pace: { readonly firstMs: number; readonly lastMs: number } | null;
  /**
   * Each worker's resident memory (MiB), the median over the same first and last steps: whether it grew
   * over a long session. Null when its step lines carry none (logs of older builds).
   */
  readonly memory: readonly { readonly tower: number; readonly firstMiB: number; readonly lastMiB: number }[] | null;
}

/** Steps at each end of a session whose median step times the sessions table shows. */
export const SESSION_PACE_STEPS = 50;

export interface Row {
  readonly from: number;
  readonly to: number;
  readonly epoch: number | null;
  /** The learning rate of the row's last step. */
  readonly lr: number;
  /** The learning rate of its first step, where it differs (a schedule's drop, or --lr changed on resume, within the row). */
  readonly lrFrom?: number;
  readonly loss: number;
  /** Training top-1 error: the share of the rows' training images misclassified (before each step's update). */
  readonly top1Error: number;
  /** The evaluations that fell in the row (after its steps): held-out error at that step. */
  readonly evals: readonly EvalEvent[];
}

/** What is left of the planned steps, timed at the run's recent pace. */
export interface Remaining {
  readonly steps: number;
  /**
   * Median step time of the last PACE_STEPS steps logged (this machine's pace of late, whichever session), each
   * session's first left out; null when those are the only ones (their time is mostly start-up: no estimate yet).
   */
  readonly stepMs: number | null;
  readonly pacedOn: number;
  /** Evaluations still to come: at epoch ends, every `--eval-every` steps and after the last step, as the coordinator runs them (0 for runs without evaluation). */
  readonly evaluations: number;
  /** Mean time of the last evaluations logged (up to 3); 0 when none was timed. */
  readonly evalMs: number;
  /** null with stepMs. */
  readonly seconds: number | null;
}

const PACE_STEPS = 500;

export interface RunReport {
  readonly preset: string;
  readonly data: string;
  readonly batch: number;
  readonly plannedSteps: number;
  readonly stepsPerEpoch: number | null;
  /** The epochs planned when the run is counted in epochs (--epochs); null for a run counted in steps (--steps), even on data with epochs. */
  readonly epochs: number | null;
  readonly stepsDone: number;
  readonly sessions: readonly Session[];
  readonly seconds: number;
  readonly rows: readonly Row[];
  readonly lastEval: EvalEvent | null;
  /** Null when the planned steps are done, or no step was logged. */
  readonly remaining: Remaining | null;
  /** The step of the latest checkpoint written (a resume continues from it; the steps logged after it are done again), null when none was. */
  readonly lastCheckpoint: number | null;
  /**
   * The step of the latest checkpoint still in the run folder, when the folder was looked at (summary RUN_DIR):
   * null when none is; undefined when not looked at.
   */
  readonly latestKept?: number | null;
  /** Workers lost and the run continued (restart events), over all sessions. */
  readonly restarts: number;
  /** The last reading of the layers' norms (--norms-every): after which step, each layer's |dw| / |w| over both towers; null when none. */
  readonly norms: { readonly step: number; readonly layers: readonly { readonly layer: string; readonly ratio: number }[] } | null;
}

/** A run folder's metrics.jsonl, refused in one line when the folder or the file is missing or not what it should be. */
export function runMetricsFile(runDir: string): string {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(runDir)) throw new UserError(`${runDir}: no such run folder`);
  if (!fs.statSync(runDir).isDirectory()) throw new UserError(`${runDir} is a file: give a run folder (--run-dir of a run)`);
  if (!fs.existsSync(file)) throw new UserError(`${runDir} has no metrics.jsonl: not a run folder (--run-dir of a run), or its run has not started`);
  if (!fs.statSync(file).isFile()) throw new UserError(`${file} is not a file: a run folder's metrics.jsonl is the run's log, one JSON line an event`);
  return file;
}

/**
 * Reads RUN_DIR/metrics.jsonl; a UserError when there is none or it holds no run. A line that is JSON but no event
 * the readers can use (metrics-events.ts) is left out, and `warn` told once which.
 */
export function readRunEvents(runDir: string, warn: (line: string) => void = (l) => process.stderr.write(`alexnet: ${l}\n`)): Event[] {
  const file = runMetricsFile(runDir);
  const events: Event[] = [];
  const left = new LeftOut();
  // line by line (a log of a long run passes the longest string Node makes, 512 MiB); a line that is not JSON is
  // an error unless it is the last one: a run being written (or killed mid-line) may leave it torn
  let torn: number | null = null;
  let n = 0;
  for (const line of fileLines(file)) {
    n++;
    if (line.trim() === '') continue;
    if (torn !== null) throw new UserError(`${file}, line ${torn}: not JSON`);
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      torn = n;
      continue;
    }
    const why = eventProblem(e);
    if (why === null) events.push(e as Event);
    else left.add(n, why);
  }
  const said = left.describe(file);
  if (said) warn(said);
  if (!events.some((e) => e.event === 'run')) throw new UserError(`${file} holds no run (no "run" line)`);
  return events;
}

/** The lines of a text file, read 16 MiB at a time (no limit on the file's size). */
export function* fileLines(file: string, chunkBytes = 16 << 20): Generator<string> {
  const fd = fs.openSync(file, 'r');
  const decoder = new StringDecoder('utf8');
  try {
    const buf = Buffer.alloc(chunkBytes);
    let rest = '';
    for (;;) {
      const got = fs.readSync(fd, buf, 0, chunkBytes, null);
      if (got === 0) break;
      // a character cut at the chunk's end waits for the next chunk (StringDecoder keeps it)
      const text = rest + decoder.write(buf.subarray(0, got));
      const lines = text.split('\n');
      rest = lines.pop()!;
      yield* lines;
    }
    yield rest + decoder.end();
  } finally {
    fs.closeSync(fd);
  }
}

/** Each logged training step's time in ms, in the order of the log. */
export function stepTimesMs(events: readonly Event[]): number[] {
  return events.filter((e): e is StepEvent => e.event === 'step').map((e) => e.ms);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Each tower's resident memory over a session's first and last SESSION_PACE_STEPS steps (medians of the steps that report it). */
function sessionMemory(steps: readonly StepEvent[]): Session['memory'] {
  const towers = new Map<number, number[]>();
  for (const s of steps) {
    for (const w of s.workers ?? []) {
      if (typeof w.rss_mib !== 'number' || !(w.rss_mib > 0)) continue;
      const list = towers.get(w.tower) ?? [];
      list.push(w.rss_mib);
      towers.set(w.tower, list);
    }
  }
  if (towers.size === 0) return null;
  return [...towers.entries()]
    .sort(([a], [b]) => a - b)
    .map(([tower, mib]) => ({ tower, firstMiB: median(mib.slice(0, SESSION_PACE_STEPS)), lastMiB: median(mib.slice(-SESSION_PACE_STEPS)) }));
}

/**
 * The step of the checkpoint event `e` says was written, else null: a checkpoint line, or a stopped line with its
 * checkpoint (a stop's checkpoint is logged as a checkpoint line too; a log that has only the stopped line's says it there).
 */
function checkpointStepOf(e: Event): number | null {
  const written = e.event === 'checkpoint' || (e.event === 'stopped' && typeof (e as { checkpoint?: unknown }).checkpoint === 'string');
  return written && typeof e.step === 'number' ? e.step : null;
}

/** The report of a run's events; rows of `per` steps (default: an epoch, or 100 steps when the run has no epochs). */
export function summariseRun(events: readonly Event[], per?: number): RunReport {
  const runs = events.filter((e): e is RunEvent => e.event === 'run');
  const last = runs[runs.length - 1]!;
  const steps = new Map<number, StepEvent>();
  const evals = new Map<number, EvalEvent>();
  const sessions: Session[] = [];
  // every step and evaluation logged, in the order they ran (abandoned ones too: they still time this machine)
  const timeline: StepEvent[] = [];
  // the steps that time the pace: each session's first step (its kernels compiled, its data opened) left out
  const paced: StepEvent[] = [];
  let sessionFirst = false;
  /** The checkpoint a resume would go on from, as the log tells it: a checkpoint line, a session's start, a restart's; null: none. */
  let resumable: number | null = null;
  const evalTimeline: EvalEvent[] = [];
  let cur: { run: RunEvent; steps: StepEvent[]; evals: EvalEvent[]; end: string | null; seconds: number | null } | null = null;
  const close = () => {
    if (!cur) return;
    const stepMs = cur.steps.reduce((s, m) => s + m.ms, 0) + cur.evals.reduce((s, m) => s + (m.ms ?? 0), 0);
    sessions.push({
      runId: cur.run.run_id,
      started: cur.run.started ?? null,
      backend: cur.run.workers?.[0]?.backend ?? null,
      fromStep: cur.run.start_step,
      toStep: cur.steps.length ? cur.steps[cur.steps.length - 1]!.step + 1 : cur.run.start_step,
      seconds: cur.seconds ?? stepMs / 1000,
      end: cur.end ?? 'running or killed',
      pace: cur.steps.length
        ? { firstMs: median(cur.steps.slice(0, SESSION_PACE_STEPS).map((m) => m.ms)), lastMs: median(cur.steps.slice(-SESSION_PACE_STEPS).map((m) => m.ms)) }
        : null,
      memory: sessionMemory(cur.steps),
    });
  };
  // a resumed or restarted run continues from a checkpoint: what was logged after it was abandoned
  const abandonFrom = (from: number) => {
    for (const k of [...steps.keys()]) if (k >= from) steps.delete(k);
    for (const k of [...evals.keys()]) if (k > from) evals.delete(k);
  };
  for (const e of events) {
    resumable = checkpointStepOf(e) ?? resumable;
    if (e.event === 'run') {
      close();
      cur = { run: e as RunEvent, steps: [], evals: [], end: null, seconds: null };
      sessionFirst = true;
      const to = rewoundTo(e);
      if (to !== null) abandonFrom(to);
      // begun from a checkpoint (the later ones set aside), or from nothing
      const from = (e as RunEvent).start_step;
      resumable = typeof from === 'number' && from > 0 ? from : null;
    } else if (e.event === 'step') {
      const s = e as StepEvent;
      steps.set(s.step, s);
      timeline.push(s);
      if (!sessionFirst) paced.push(s);
      sessionFirst = false;
      cur?.steps.push(s);
    } else if (e.event === 'eval') {
      const v = e as EvalEvent;
      evals.set(v.step, v);
      if (v.ms !== undefined) evalTimeline.push(v);
      cur?.evals.push(v);
    } else if (e.event === 'restart') {
      // after a lost worker the run went back to its last checkpoint
      const to = rewoundTo(e);
      if (to !== null) {
        abandonFrom(to);
        resumable = to > 0 ? to : null;
      }
    } else if (cur && e.event === 'done') {
      cur.seconds = Number(e.elapsed_s);
      cur.end ??= 'done';
    } else if (cur && e.event === 'stopped') cur.end = `stopped: ${String(e.reason)}`;
    else if (cur && e.event === 'failed') cur.end = 'failed';
  }
  close();
  // a session that a later one followed without an end line of its own was killed (or lost its machine)
  for (let i = 0; i + 1 < sessions.length; i++) {
    const s = sessions[i]!;
    const next = sessions[i + 1]!;
    if (s.end === 'running or killed') sessions[i] = { ...s, end: `killed${next.fromStep < s.toStep ? `; steps ${next.fromStep}-${s.toStep - 1} done again` : ''}` };
    // one that ended, resumed later from an earlier checkpoint (--resume RUN_DIR/checkpoints/step-N): its last steps were discarded
    else if (next.fromStep < s.toStep) sessions[i] = { ...s, end: `${s.end}; steps ${next.fromStep}-${s.toStep - 1} done again (the next session resumed from step ${next.fromStep})` };
  }
  const spe = last.steps_per_epoch;
  const width = per ?? spe ?? 100;
  const ordered = [...steps.values()].sort((a, b) => a.step - b.step);
  const rows: Row[] = [];
  for (let i = 0; i < ordered.length; ) {
    const from = Math.floor(ordered[i]!.step / width) * width;
    const to = from + width;
    const chunk: StepEvent[] = [];
    while (i < ordered.length && ordered[i]!.step < to) chunk.push(ordered[i++]!);
    rows.push({
      from,
      to: chunk[chunk.length - 1]!.step + 1,
      epoch: spe ? Math.floor(from / spe) : null,
      lr: chunk[chunk.length - 1]!.lr,
      ...(chunk[0]!.lr !== chunk[chunk.length - 1]!.lr ? { lrFrom: chunk[0]!.lr } : {}),
      loss: mean(chunk.map((m) => m.loss)),
      top1Error: mean(chunk.map(stepError)),
      evals: [...evals.values()].filter((v) => v.step > from && v.step <= to).sort((a, b) => a.step - b.step),
    });
  }
  const allEvals = [...evals.values()].sort((a, b) => a.step - b.step);
  const stepsDone = ordered.length ? ordered[ordered.length - 1]!.step + 1 : last.start_step;
  const lastCheckpoint = events.reduce<number | null>((at, e) => checkpointStepOf(e) ?? at, null);
  // a last session that failed or stopped goes on (--resume) from its last checkpoint: the steps logged after it
  // are still to do (one still running goes on from where it is)
  const ended = /^(failed|stopped)/.test(sessions[sessions.length - 1]?.end ?? '');
  const resumesAt = ended && resumable !== null && resumable < stepsDone ? resumable : stepsDone;
  return {
    preset: last.preset,
    data: last.data,
    batch: last.batch,
    plannedSteps: last.steps,
    stepsPerEpoch: spe,
    epochs: last.epochs ?? null,
    stepsDone,
    sessions,
    seconds: sessions.reduce((s, x) => s + x.seconds, 0),
    rows,
    lastEval: allEvals[allEvals.length - 1] ?? null,
    remaining: remainingOf(resumesAt, last.steps, spe, last.eval, paced, evalTimeline),
    lastCheckpoint,
    restarts: events.filter((e) => e.event === 'restart').length,
    norms: lastNorms(ordered),
  };
}

/** The last step line with layer norms: each layer's update/weight ratio over both towers. */
function lastNorms(steps: readonly StepEvent[]): RunReport['norms'] {
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i]!;
    if (!Array.isArray(s.layer_norms) || s.layer_norms.length === 0) continue;
    return { step: s.step + 1, layers: layerNormTotals(s.layer_norms).map((l) => ({ layer: l.layer, ratio: l.ratio ?? 0 })) };
  }
  return null;
}

/** Evaluations after steps done+1 .. planned: the coordinator's rule (epoch ends, every N, the last step). */
function evaluationsLeft(done: number, planned: number, spe: number | null, every: number): number {
  let n = 0;
  for (let k = done + 1; k <= planned; k++) if ((spe && k % spe === 0) || (every > 0 && k % every === 0) || k === planned) n++;
  return n;
}

function remainingOf(done: number, planned: number, spe: number | null, ev: RunEvent['eval'], paced: StepEvent[], evalTimeline: EvalEvent[]): Remaining | null {
  const steps = planned - done;
  if (steps <= 0) return null;
  const recent = paced.slice(-PACE_STEPS).map((s) => s.ms);
  const stepMs = recent.length > 0 ? median(recent) : null;
  // logs from before the run line said its evaluation: epoch ends when the run has epochs
  const evaluations = ev === null ? 0 : ev === undefined ? (spe ? Math.floor(planned / spe) - Math.floor(done / spe) : 0) : evaluationsLeft(done, planned, spe, ev.every);
  const lastEvals = evalTimeline.slice(-3);
  const evalMs = lastEvals.length ? mean(lastEvals.map((v) => v.ms!)) : 0;
  return { steps, stepMs, pacedOn: recent.length, evaluations, evalMs, seconds: stepMs === null ? null : (steps * stepMs + evaluations * evalMs) / 1000 };
}

/** An evaluation's loss as the report prints it: a line with none (an overflow logged as null) says so. */
const lossText = (loss: number | null | undefined): string => (typeof loss === 'number' && Number.isFinite(loss) ? loss.toFixed(3) : 'not finite');

const hours = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(2)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A run carried across machines (a CPU's webasm, a lent GPU's webgpu): the wall time each backend took. */
function byBackend(list: readonly Session[]): string {
  const per = new Map<string, { seconds: number; sessions: number }>();
  for (const s of list) {
    const b = per.get(s.backend ?? '?') ?? { seconds: 0, sessions: 0 };
    per.set(s.backend ?? '?', { seconds: b.seconds + s.seconds, sessions: b.sessions + 1 });
  }
  if (per.size < 2) return '';
  return ` (${[...per].map(([backend, b]) => `${backend}: ${hours(b.seconds)} in ${plural(b.sessions, 'session')}`).join(', ')})`;
}

/** Epochs done, with two decimals, or two significant digits below 0.01 (a few steps of a large data set). */
const epochCount = (e: number): string => (e === 0 || e >= 0.01 ? e.toFixed(2) : e.toPrecision(2));

/** The report as Markdown: a few lines, the sessions and the table. */
export function formatRunReport(r: RunReport): string {
  const classes = classesOfPreset(r.preset);
  const out: string[] = [];
  // a run counted in epochs says them; one counted in steps (--steps, even on data with epochs) says steps;
  // --epochs capped by --steps says both (the cap may be a small part of an epoch)
  const spe = r.stepsPerEpoch;
  const epochs = !spe || !r.epochs
    ? ' steps'
    : r.plannedSteps < r.epochs * spe
      ? ` (${epochCount(r.stepsDone / spe)} epochs; --steps ${r.plannedSteps} caps the ${r.epochs} asked for)`
      : ` (${epochCount(r.stepsDone / spe)} of ${(r.plannedSteps / spe).toFixed(0)} epochs)`;
  // a run line written by another tool may lack them
  out.push(`preset ${r.preset ?? 'not said'}, batch ${r.batch ?? 'not said'}; ${r.data ?? 'data not said'}`);
  // steps logged after the checkpoint a failed or stopped run goes on from are not kept
  const kept = r.remaining && r.remaining.steps > r.plannedSteps - r.stepsDone ? ` (${r.plannedSteps - r.remaining.steps} kept in the last checkpoint)` : '';
  out.push(`steps done: ${r.stepsDone}${kept} of ${r.plannedSteps}${epochs}; training wall time ${hours(r.seconds)} in ${plural(r.sessions.length, 'session')}${byBackend(r.sessions)}`);
  const left = r.remaining;
  if (left) {
    const evals = left.evaluations > 0 ? ` and ${plural(left.evaluations, 'evaluation')}${left.evalMs > 0 ? ` of ${hours(left.evalMs / 1000)}` : ' (not yet timed)'}` : '';
    if (left.stepMs === null || left.seconds === null) out.push(`remaining: ${left.steps} steps${evals}; no estimate yet (the steps logged are each session's first, whose time is mostly start-up)`);
    else out.push(`remaining: ${left.steps} steps at ${(left.stepMs / 1000).toFixed(2)} s a step (median of the last ${left.pacedOn})${evals}: about ${hours(left.seconds)}`);
  }
  // steps logged past the last checkpoint (a run killed since) are done again by --resume
  const since = r.lastCheckpoint !== null && r.lastCheckpoint < r.stepsDone ? ` (steps ${r.lastCheckpoint}-${r.stepsDone - 1} were logged after it: --resume does them again)` : '';
  // none at all: the steps logged are not kept anywhere
  // (a run begun from another folder's checkpoint can go on from that one: only one begun at step 0 is said lost)
  const begun = r.sessions[0]?.fromStep ?? 0;
  const none = r.stepsDone > 0 && begun === 0 ? `no checkpoint: nothing of the ${plural(r.stepsDone, 'step')} logged is kept (--resume has nothing to continue from: start the run again)` : 'no checkpoint in this folder';
  // the checkpoints taken out of the folder since (a finished run keeps its exported model instead)
  // (a later one than the log names: written, its line lost with a killed process; nothing gone)
  const gone = r.latestKept === undefined || r.lastCheckpoint === null || (r.latestKept !== null && r.latestKept >= r.lastCheckpoint) ? '' : r.latestKept === null ? ' (no longer in the folder: no checkpoint is kept, --resume has nothing to continue from)' : ` (no longer in the folder: the latest kept is step ${r.latestKept}, which --resume continues from)`;
  if (r.lastCheckpoint !== null || r.restarts > 0 || (r.stepsDone > 0 && begun === 0)) out.push(`${r.lastCheckpoint !== null ? `last checkpoint: step ${r.lastCheckpoint}${gone || since}` : none}${r.restarts > 0 ? `; ${plural(r.restarts, 'restart')} after a lost worker` : ''}`);
  if (r.lastEval) out.push(`last evaluation: after step ${r.lastEval.step}, loss ${lossText(r.lastEval.loss)}, ${errorWords(r.lastEval.top1_error, r.lastEval.top5_error, classes)} on ${r.lastEval.images} held-out images${r.lastEval.views ? ` (${r.lastEval.views} views each)` : ''}`);
  if (r.norms) out.push(`update / weight after step ${r.norms.step}: ${r.norms.layers.map((l) => `${l.layer} ${l.ratio.toExponential(1)}`).join(', ')}`);
  out.push('');
  // the workers' memory, where the step lines carry it (builds since 2026-12-05)
  const memory = r.sessions.some((s) => s.memory !== null);
  out.push(`| session | started | backend | steps | wall time | step time, first / last ${SESSION_PACE_STEPS} steps |${memory ? ` worker memory, first / last ${SESSION_PACE_STEPS} steps |` : ''} ended |`);
  out.push(`|---|---|---|---|---|---|${memory ? '---|' : ''}---|`);
  for (const [i, s] of r.sessions.entries()) {
    const pace = s.pace ? `${(s.pace.firstMs / 1000).toFixed(2)} / ${(s.pace.lastMs / 1000).toFixed(2)} s` : '';
    const mem = memory ? ` ${(s.memory ?? []).map((m) => `tower ${m.tower} ${m.firstMiB.toFixed(0)} / ${m.lastMiB.toFixed(0)} MiB`).join(', ')} |` : '';
    out.push(`| ${i + 1} | ${s.started ?? '?'} | ${s.backend ?? '?'} | ${s.toStep > s.fromStep ? `${s.fromStep}-${s.toStep - 1}` : 'none'} | ${hours(s.seconds)} | ${pace} |${mem} ${s.end} |`);
  }
  out.push('');
  const five = topFiveMeaningful(classes);
  out.push(`| steps | ${r.stepsPerEpoch ? 'epoch | ' : ''}lr | mean training loss | training top-1 error | held-out loss, top-1${five ? ' / top-5' : ''} error |`);
  out.push(`|---|${r.stepsPerEpoch ? '---|' : ''}---|---|---|---|`);
  for (const row of r.rows) {
    const ev = row.evals.map((v) => `${lossText(v.loss)}, ${pct(v.top1_error)}${five ? ` / ${pct(v.top5_error)}` : ''} (step ${v.step}, ${v.images} images)`).join('; ');
    out.push(`| ${row.from}-${row.to - 1} | ${row.epoch !== null ? `${row.epoch} | ` : ''}${row.lrFrom !== undefined ? `${row.lrFrom} to ${row.lr}` : row.lr} | ${row.loss.toFixed(3)} | ${pct(row.top1Error)} | ${ev} |`);
  }
  return out.join('\n') + '\n';
}
