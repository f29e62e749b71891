/**
 * `node --import tsx bench/readback-wait.ts` (webgpu): the main thread's CPU time while it waits for one
 * read-back behind a GEMM of 512 x 512 x 4096, three times. Dawn's Node bindings poll for the GPU in a
 * setImmediate loop; the project paces those polls (packages/core/src/dawn-polling.ts), and
 * ALEXNET_DAWN_POLL=spin leaves them as Dawn runs them. Linux only (it reads /proc/self/task/PID/stat).
 */
import { readFileSync } from 'node:fs';
import { Device, dawnPollingFromEnv } from '@alexnet-mp/core';
import { Gemm, gemmShape } from '../packages/core/src/kernels/gemm.js';
import { sayUserErrors } from './cli-args.js';

// no WebGPU adapter, a setting refused: one line
sayUserErrors();

/** The main thread's user + system CPU time, ms (clock ticks of 10 ms). */
const mainThreadCpuMs = () => {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

const dev = await Device.create('webgpu');
const [M, N, K] = [512, 512, 4096];
const gemm = new Gemm(dev, 'gemm', gemmShape(M, N, K), {});
const operands = [new Float32Array(M * K).fill(0.5), new Float32Array(K * N).fill(0.25), new Float32Array(M)];
const [a, b, bias] = await Promise.all(operands.map((x) => dev.upload(x)));
for (const x of [a!, b!, bias!]) dev.keep(x);
const once = async () => dev.toHost(await gemm.run(a!, b!, bias!), M * N);
await once();
console.log(`${dev.adapter ? `adapter '${dev.adapter.name}'` : 'webgpu'}, Dawn's polling: ${dawnPollingFromEnv()} (ALEXNET_DAWN_POLL)`);
for (let i = 0; i < 3; i++) {
  const [c0, t0] = [mainThreadCpuMs(), performance.now()];
  await once();
  console.log(`a read-back behind a GEMM of ${M} x ${N} x ${K}: ${(performance.now() - t0).toFixed(0)} ms, main thread CPU ${mainThreadCpuMs() - c0} ms`);
}
dev.destroy();
process.exit(0);
