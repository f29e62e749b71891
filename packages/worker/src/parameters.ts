/**
 * A tower's parameters on the wire: GetParameters streams them out (weights, biases, momentum on request),
 * SetParameters takes a checkpoint's back, every tensor checked before anything changes.
 */
import * as grpc from '@grpc/grpc-js';
import { towerParamLayers, type TowerParams } from '@alexnet-mp/core';
import { decodeTensor, encodeTensor, type GetParametersRequest, type ParameterTensor } from './protocol.js';
import { RpcError } from './rpc.js';
import { checkFinite } from './validate.js';
import type { Run, WorkerContext } from './run.js';

/** Writes run's parameters of `req.layers` (all when empty), and their momentum with `include_momentum`, at the step reached. */
export async function streamParameters(w: WorkerContext, run: Run, req: GetParametersRequest, write: (m: ParameterTensor) => Promise<void>): Promise<void> {
  const layers = towerParamLayers(w.spec, w.tower);
  const only = req.layers ?? [];
  const unknown = only.filter((name) => !layers.some((l) => l.name === name));
  if (unknown.length > 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${w.tower} has no parameters in ${unknown.join(', ')} (layers with parameters: ${layers.map((l) => l.name).join(', ')})`);
  const step = run.stepsDone;
  const params = await run.tower.syncParams();
  for (const l of layers) {
    if (only.length > 0 && !only.includes(l.name)) continue;
    const p = params.get(l.name)!;
    await write({ layer: l.name, kind: 'w', tensor: encodeTensor(l.shape, p.w), step });
    await write({ layer: l.name, kind: 'b', tensor: encodeTensor([l.shape[0]], p.b), step });
    if (req.include_momentum) {
      await write({ layer: l.name, kind: 'vw', tensor: encodeTensor(l.shape, p.vw), step });
      await write({ layer: l.name, kind: 'vb', tensor: encodeTensor([l.shape[0]], p.vb), step });
    }
  }
}

/** The tower's parameters and momentum, and the step they belong to, from a SetParameters stream: every tensor checked. */
export function parametersFromStream(w: WorkerContext, msgs: readonly ParameterTensor[]): { params: TowerParams; step: number } {
  const layers = towerParamLayers(w.spec, w.tower);
  const got = new Map<string, Float32Array>();
  let step: number | null = null;
  for (const m of msgs) {
    const l = layers.find((x) => x.name === m.layer);
    if (!l) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tower ${w.tower} has no layer ${m.layer}`);
    if (!['w', 'b', 'vw', 'vb'].includes(m.kind)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${m.layer}: unknown kind "${m.kind}"`);
    if (step !== null && m.step !== step) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tensors for steps ${step} and ${m.step} in one call`);
    step = m.step;
    const shape = m.kind === 'w' || m.kind === 'vw' ? l.shape : [l.shape[0]];
    try {
      const x = decodeTensor(m.tensor, shape);
      checkFinite(x, `${m.layer}.${m.kind}`);
      got.set(`${m.layer}/${m.kind}`, x);
    } catch (e) {
      if (e instanceof RpcError) throw e;
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `${m.layer}.${m.kind}: ${(e as Error).message}`);
    }
  }
  const params: TowerParams = new Map();
  for (const l of layers) {
    const take = (k: string) => {
      const x = got.get(`${l.name}/${k}`);
      if (!x) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no ${k} tensor for ${l.name}: send every layer's w, b, vw and vb`);
      return x;
    };
    params.set(l.name, { w: take('w'), b: take('b'), vw: take('vw'), vb: take('vb') });
  }
  return { params, step: step ?? 0 };
}
