/** Worker.Status: what a worker says of itself at any time, also during a step (it reads counters only). */
import type { Device } from '@alexnet-mp/core';
import type { ModelIdentity, StatusReply, WorkerState } from './protocol.js';
import { Traffic } from './exchange.js';
import { redactRunId, zeroTiming, type Run } from './run.js';
import { adapterMsg } from './adapter-report.js';

export interface StatusSource {
  readonly identity: ModelIdentity;
  readonly tower: number;
  readonly device: Device;
  /** The adapter index on webgpu; elsewhere the --device given, 0 when none was. */
  readonly deviceIndex: number;
  readonly state: WorkerState;
  readonly run: Run | null;
  readonly lastError: string;
  /** The worker's own --peer, if given. */
  readonly peer: string | undefined;
  readonly points: readonly string[];
  /** When the worker started (performance.now(): monotonic). */
  readonly started: number;
}

export function statusReply(s: StatusSource): StatusReply {
  const run = s.run;
  const points = [...s.points];
  return {
    model: s.identity,
    tower: s.tower,
    backend: s.device.mode,
    device: s.deviceIndex,
    state: s.state,
    run_id: redactRunId(run?.id ?? ''),
    batch: run?.batch ?? 0,
    steps_done: run?.stepsDone ?? 0,
    last_error: s.lastError,
    peer_address: run?.peer.address ?? s.peer ?? '',
    last_step_traffic: (run?.lastTraffic ?? new Traffic(points)).list(),
    run_traffic: (run?.total ?? new Traffic(points)).list(),
    last_step_timing: run?.lastTiming ?? zeroTiming(),
    uptime_s: (performance.now() - s.started) / 1000,
    rss_bytes: process.memoryUsage.rss(),
    pid: process.pid,
    evaluations_done: run?.evaluationsDone ?? 0,
    eval_traffic: (run?.evalTotal ?? new Traffic(points)).list(),
    adapter: adapterMsg(s.device.adapter),
  };
}
