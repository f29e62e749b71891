/**
 * A tower's parameters on the wire: GetParameters streams them out (weights, biases, momentum on request) in
 * chunks of bounded size (chunks.ts); SetParameters takes a checkpoint's back, each message checked as it
 * arrives and nothing changed before the last one.
 */
import * as grpc from '@grpc/grpc-js';
import { Tower, towerParamLayers, type TowerParams } from '@alexnet-mp/core';
import type { GetParametersRequest, ParameterTensor, SetParametersReply, WorkerState } from './protocol.js';
import { stepPhase } from './exchange.js';
import { ChunkError, DEFAULT_CHUNK_BYTES, ParameterAssembly, tensorChunks } from './chunks.js';
import { RpcError } from './rpc.js';
import { checkFinite } from './validate.js';
import { notTheConfiguredRun, redactRunId, type Run, type WorkerContext } from './run.js';

const KINDS = ['w', 'b', 'vw', 'vb'] as const;

/**
 * A worker's parameters go to, and come from, only the run that configured it: GetParameters and each
 * SetParameters message name it, as Step does (FAILED_PRECONDITION otherwise, the configured run's id hidden).
 * A request naming no run (a coordinator older than feature "parameters-run-id") is taken only on the
 * connection that configured the run (`from`, the caller's address, is the run's holder).
 */
export function checkParametersRun(run: Run, runId: string | undefined, what: 'GetParameters' | 'SetParameters', from: string): void {
  if (!runId) {
    if (run.holder !== undefined && from === run.holder) return;
    throw new RpcError(grpc.status.FAILED_PRECONDITION, `${what} names no run: send the configured run's id (run_id; a coordinator older than this worker sends none: update it)`);
  }
  if (runId !== run.id) throw notTheConfiguredRun(runId, run);
}

/** Writes run's parameters of `req.layers` (all when empty), and their momentum with `include_momentum`, at the step reached. */
export async function streamParameters(w: WorkerContext, run: Run, req: GetParametersRequest, write: (m: ParameterTensor) => Promise<void>): Promise<void> {
  const layers = towerParamLayers(w.spec, w.tower);
  const only = req.layers ?? [];
  const unknown = only.filter((name) => !layers.some((l) => l.name === name));
  if (unknown.length > 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${w.tower} has no parameters in ${unknown.join(', ')} (layers with parameters: ${layers.map((l) => l.name).join(', ')})`);
  const chunkBytes = req.max_chunk_bytes || DEFAULT_CHUNK_BYTES;
  const step = run.stepsDone;
  const params = await run.tower.syncParams();
  // parameters the GPU spoiled (out of memory, a validation error) never reach a checkpoint
  w.device.checkGpuErrors(`the steps up to ${step}, read for GetParameters`);
  for (const l of layers) {
    if (only.length > 0 && !only.includes(l.name)) continue;
    const p = params.get(l.name)!;
    const kinds = req.include_momentum ? KINDS : KINDS.slice(0, 2);
    for (const kind of kinds) {
      const shape = kind === 'w' || kind === 'vw' ? l.shape : [l.shape[0]];
      for (const c of tensorChunks(shape, p[kind], chunkBytes)) await write({ layer: l.name, kind, step, ...c });
    }
  }
}

/**
 * A SetParameters stream taken message by message: each is checked on arrival against the preset's layers and
 * shapes (whole tensors or chunks of rows, in order, each once), its values finite, all of one step; memory is
 * one tower's parameters and momentum, whatever the caller sends.
 */
export class ParameterIntake {
  private readonly layers;
  private readonly assembly = new ParameterAssembly();
  private step: number | null = null;
  messages = 0;

  constructor(private readonly w: WorkerContext) {
    this.layers = towerParamLayers(w.spec, w.tower);
  }

  take(m: ParameterTensor): void {
    const l = this.layers.find((x) => x.name === m.layer);
    if (!l) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${this.w.tower} has no layer ${JSON.stringify(m.layer.slice(0, 40))} (layers with parameters: ${this.layers.map((x) => x.name).join(', ')})`);
    if (!(KINDS as readonly string[]).includes(m.kind)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${m.layer}: unknown kind ${JSON.stringify(String(m.kind).slice(0, 20))} (w, b, vw or vb)`);
    if (this.step !== null && m.step !== this.step) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tensors for steps ${this.step} and ${m.step} in one call`);
    this.step = m.step;
    const shape = m.kind === 'w' || m.kind === 'vw' ? l.shape : [l.shape[0]!];
    try {
      const { floats, firstIndex } = this.assembly.add(m, shape);
      checkFinite(floats, `${m.layer}.${m.kind}`, firstIndex);
    } catch (e) {
      if (e instanceof ChunkError) throw new RpcError(grpc.status.INVALID_ARGUMENT, e.message);
      throw e;
    }
    this.messages++;
  }

  /** Every layer's four tensors and the step, once the stream has ended; INVALID_ARGUMENT naming what is missing. */
  finish(): { params: TowerParams; step: number } {
    const left = this.assembly.incomplete();
    if (left.length > 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, `the stream ended inside ${left.join(', ')}`);
    const params: TowerParams = new Map();
    for (const l of this.layers) {
      const take = (k: (typeof KINDS)[number]) => {
        const x = this.assembly.get(l.name, k);
        if (!x) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no ${k} tensor for ${l.name}: send every layer's w, b, vw and vb`);
        return x;
      };
      params.set(l.name, { w: take('w'), b: take('b'), vw: take('vw'), vb: take('vb') });
    }
    return { params, step: this.step ?? 0 };
  }
}

/** A worker as SetParameters sees it: the configured run and its state now, read again at each message. */
export interface SettableWorker extends WorkerContext {
  current(): { run: Run | null; state: WorkerState };
}

/**
 * One SetParameters call: refused before a message is read when the worker is unconfigured or busy, each
 * message checked to name the configured run and taken by a ParameterIntake, and at the end the run's tower replaced by one with the checkpoint's
 * parameters and momentum and its step counter set, only if the run is still the same, READY, with no step
 * or evaluation done.
 */
export function parameterSetter(w: SettableWorker, from: string): { take(m: ParameterTensor): void; finish(): Promise<SetParametersReply> } {
  const run = w.current().run;
  const settable = (): Run => {
    const now = w.current();
    if (!run || now.state === 'IDLE') throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not configured: call Configure first');
    if (now.run !== run) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'the run changed while the parameters arrived');
    if (now.state !== 'READY' || run.stepsDone !== 0 || run.evaluationsDone !== 0) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `parameters are set only right after Configure (this worker is ${now.state}, ${run.stepsDone} steps and ${run.evaluationsDone} evaluations done)`);
    }
    return run;
  };
  settable();
  const intake = new ParameterIntake(w);
  return {
    take: (m) => {
      checkParametersRun(settable(), m.run_id, 'SetParameters', from);
      intake.take(m);
    },
    finish: async () => {
      const r = settable();
      const { params, step } = intake.finish();
      // the tower Configure made (and its evaluation towers) go with their kernels and tensors
      r.evalTowers.clear();
      w.device.reset();
      r.tower = new Tower(w.device, w.spec, w.tower, r.batch, params);
      r.stepsDone = step;
      r.mailbox.dropBefore(stepPhase(r.stepsDone));
      w.log(`run ${redactRunId(r.id)}: parameters and momentum set from the coordinator (${params.size * 4} tensors in ${intake.messages} messages), continuing at step ${r.stepsDone}`);
      return { tower: w.tower, step: r.stepsDone, tensors: params.size * 4 };
    },
  };
}
