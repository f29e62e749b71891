/**
 * Which WebGPU adapter (`worker --device N`, an index in Dawn's list) a worker task opens, from the GPUs
 * Slurm gave the task.
 *
 * Slurm names GPUs by their index on the node (SLURM_STEP_GPUS, as in gres.conf and nvidia-smi: PCI bus
 * order); Dawn lists the GPUs it can open, also in PCI bus order. Two cases:
 * - the node confines the task to its GPUs (ConstrainDevices=yes in cgroup.conf): Dawn sees only those,
 *   so the task's k-th GPU is Dawn's k-th;
 * - it does not: Dawn sees every GPU of the node, and the GPU Slurm calls n is Dawn's n-th.
 * A task given several GPUs (--gres=gpu:2 for the whole step, every task seeing both) takes the one at
 * position SLURM_LOCALID modulo their number, so worker 0 and worker 1 on one node take different ones.
 */
import type { AdapterInfo } from '@alexnet-mp/core';

export interface GpuChoice {
  /** `--device` for the worker; null: give none (no GPU from Slurm, or no GPU Dawn can open). */
  readonly device: number | null;
  /** What the task says about it. */
  readonly line: string;
}

export function chooseGpu(slurmGpus: readonly number[], localid: number, adapters: readonly AdapterInfo[]): GpuChoice {
  if (slurmGpus.length === 0) return { device: null, line: 'no GPU from Slurm (no --gres=gpu or --gpus-per-task): the backend picks the device' };
  const pos = localid % slurmGpus.length;
  const gpu = slurmGpus[pos]!;
  const given = `Slurm's GPU ${gpu}${slurmGpus.length > 1 ? ` (of ${slurmGpus.join(',')}, by SLURM_LOCALID ${localid})` : ''}`;
  const dawn = adapters.filter((a) => !a.software);
  if (dawn.length === 0) return { device: null, line: `${given}, but WebGPU sees no GPU here: the backend picks the device` };
  const label = (a: AdapterInfo) => `WebGPU device ${a.index} '${a.name}'${a.pci ? ` (${a.pci})` : ''}`;
  if (dawn.length === slurmGpus.length) return { device: dawn[pos]!.index, line: `${given}: ${label(dawn[pos]!)} (WebGPU sees only this task's GPUs)` };
  if (gpu < dawn.length) return { device: dawn[gpu]!.index, line: `${given}: ${label(dawn[gpu]!)} (WebGPU sees all ${dawn.length} GPUs of the node)` };
  return { device: dawn[pos % dawn.length]!.index, line: `${given}, but WebGPU sees ${dawn.length} GPU(s): ${label(dawn[pos % dawn.length]!)}` };
}
