/**
 * Every ALEXNET_* setting the kernels read, checked at once: a process that would refuse one at its first
 * kernel (a worker at its first step, minutes after it started) refuses it when it starts instead, in one line
 * (EnvSettingError).
 */
import { dawnPollingFromEnv } from './dawn-polling.js';
import { envSwitchOn } from './env-setting-error.js';
import { webgpuGemmKind, webgpuSplits } from './kernels/gemm-webgpu.js';
import { wasmThreadChoice } from './kernels/kernel-runner.js';
import { webgpuBatchFromEnv } from './webgpu-context.js';

/** Throws the EnvSettingError of the first setting in `env` that a kernel would refuse. */
export function checkEnvSettings(env: NodeJS.ProcessEnv = process.env): void {
  webgpuBatchFromEnv(env);
  dawnPollingFromEnv(env);
  wasmThreadChoice(env);
  envSwitchOn('ALEXNET_POOL_PER_KERNEL', false, env);
  webgpuSplits(1, 1, env);
  webgpuGemmKind({ M: 4, N: 4, sbn: 1 }, env);
}
