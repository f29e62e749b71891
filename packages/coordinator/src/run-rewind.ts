/**
 * Where a run's metrics.jsonl goes back in its own history. A session's `run` line starts from its checkpoint
 * (`start_step`: a resumed run, a coordinator restarted under launch) and a `restart` line goes back to the last
 * checkpoint after a lost worker (`from_step`): what the log holds past that point was abandoned and is done
 * again. Readers of the log (summary, export-metrics, the dashboard) drop it there, so that each step has the
 * values of the session that kept it.
 */

/**
 * The steps done an event takes its run back to (its `run` line's start_step, its `restart` line's
 * from_step), or null for any other event or a line without the number. Steps past it (training steps that
 * make more steps done, evaluations after more steps) are abandoned; an evaluation at exactly that many
 * steps done was of the checkpoint's weights and stays.
 */
export function rewoundTo(e: { event?: unknown; start_step?: unknown; from_step?: unknown }): number | null {
  const at = e.event === 'run' ? e.start_step : e.event === 'restart' ? e.from_step : undefined;
  return typeof at === 'number' && Number.isInteger(at) && at >= 0 ? at : null;
}
