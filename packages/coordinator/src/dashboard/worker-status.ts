/**
 * Each worker's status for the dashboard: Worker.Status (answered at any time, also during a step: it
 * reads counters only) on both workers, at most once a second and only while a page is watching.
 */
import type { CrossingTraffic, StatusReply, StepTiming, WorkerClient } from '@alexnet-mp/worker';
import { describeError, describeWorkerDevice } from '@alexnet-mp/worker';

export interface WorkerView {
  tower: number;
  address: string;
  /** From the handshake. */
  host: string;
  /** From Status (null when it did not answer). */
  device: number | null;
  /** The gpu.js mode the worker's kernels run in. */
  backend: string | null;
  /** The WebGPU adapter its device runs on, described ("adapter 0 'NVIDIA H200' (nvidia hopper, vulkan)"), or "no adapter" (webasm, cpu). */
  adapter: string | null;
  state: string | null;
  pid: number | null;
  steps_done: number | null;
  evaluations_done: number | null;
  uptime_s: number | null;
  /** The worker process's resident memory, MiB (null when it did not answer, or an older worker does not say). */
  rss_mib: number | null;
  last_step_timing: StepTiming | null;
  /** Bytes per crossing point, of the last step and of the whole run so far. */
  last_step_traffic: CrossingTraffic[];
  run_traffic: CrossingTraffic[];
  last_error: string;
  /** Why Status did not answer, when it did not. */
  unreachable: string | null;
}

export interface StatusTarget {
  readonly client: WorkerClient;
  readonly address: string;
  readonly host: string;
}

const fromReply = (t: number, target: StatusTarget, r: StatusReply): WorkerView => ({
  tower: t,
  address: target.address,
  host: target.host,
  device: r.device,
  backend: r.backend,
  adapter: describeWorkerDevice(r),
  state: r.state,
  pid: r.pid,
  steps_done: r.steps_done,
  evaluations_done: r.evaluations_done,
  uptime_s: r.uptime_s,
  rss_mib: Number(r.rss_bytes ?? 0) > 0 ? Number(r.rss_bytes) / 2 ** 20 : null,
  last_step_timing: r.last_step_timing,
  last_step_traffic: r.last_step_traffic,
  run_traffic: r.run_traffic,
  last_error: r.last_error,
  unreachable: null,
});

/** Asks both workers for their status; a worker that does not answer within `timeoutMs` is reported as such. */
export async function workerViews(targets: readonly StatusTarget[], timeoutMs = 2000): Promise<WorkerView[]> {
  return Promise.all(
    targets.map(async (target, t): Promise<WorkerView> => {
      try {
        return fromReply(t, target, await target.client.status({ timeoutMs }));
      } catch (e) {
        return {
          tower: t,
          address: target.address,
          host: target.host,
          device: null,
          backend: null,
          adapter: null,
          state: null,
          pid: null,
          steps_done: null,
          evaluations_done: null,
          uptime_s: null,
          rss_mib: null,
          last_step_timing: null,
          last_step_traffic: [],
          run_traffic: [],
          last_error: '',
          unreachable: describeError(e),
        };
      }
    }),
  );
}
