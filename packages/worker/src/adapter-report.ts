/** The adapter a worker's device runs on, as the wire carries it and as its log, the coordinator and the dashboard say it. */
import os from 'node:os';
import { describeAdapter, describeMode, type AdapterInfo, type BackendMode } from '@alexnet-mp/core';
import type { WebGPUAdapterMsg } from './protocol.js';

export function adapterMsg(a: AdapterInfo | null): WebGPUAdapterMsg | null {
  if (!a) return null;
  const { index, name, backend, vendor, architecture, device, description, software } = a;
  return { index, name, backend, vendor, architecture, device, description, software, pci_address: a.pci ?? '' };
}

export function adapterFromMsg(m: WebGPUAdapterMsg): AdapterInfo {
  const { index, name, backend, vendor, architecture, device, description, software } = m;
  return { index, name, backend, vendor, architecture, device, description, software, ...(m.pci_address ? { pci: m.pci_address } : {}) };
}

/**
 * The device as a worker's first log line says it: "webgpu on adapter 1 'NVIDIA H200' (nvidia hopper, vulkan)";
 * "webasm, no adapter (device 1 ignored on webasm: it runs on this machine's CPU cores)".
 */
export function describeDevice(mode: BackendMode, adapter: AdapterInfo | null, requested?: number, note?: string | null): string {
  if (mode === 'webgpu' && adapter) return describeMode(mode, adapter);
  const ignored = requested !== undefined && mode !== 'webgpu' ? ` (device ${requested} ignored on ${mode}: it runs on this machine's CPU cores)` : '';
  return `${mode}, no adapter${ignored}${note ? ` (${note})` : ''}`;
}

/** A worker's device from its handshake or Status: the adapter, or "no adapter" (webasm, cpu); "device N" from a worker older than the field. */
export function describeWorkerDevice(r: { readonly backend: string; readonly device: number; readonly adapter?: WebGPUAdapterMsg | null }): string {
  if (r.adapter) return describeAdapter(adapterFromMsg(r.adapter));
  return r.backend === 'webgpu' ? `device ${r.device}` : 'no adapter';
}

/**
 * Where a worker's kernels run, for its first log line: on webasm and cpu, its threads (Device.threads:
 * `--threads`); on webgpu the GPU, and a `--threads` given is said to be ignored.
 */
export function describeThreads(mode: BackendMode, threads: number | null, requested?: number, cores = os.availableParallelism(), gcHere = process.execArgv.includes('--single-threaded-gc')): string {
  if (mode === 'webgpu') return requested === undefined ? '' : `--threads ${requested} ignored on webgpu`;
  // gpu.js's cpu mode has no worker threads
  if (mode === 'cpu') return `kernels on its own thread (cpu mode${requested === undefined ? '' : `; --threads ${requested} ignored`})`;
  // one core to run on (--threads 1, or by default where this process may use one CPU): the worker's own thread
  if (threads === 1 || (threads === null && cores === 1)) {
    const why = threads === 1 ? '--threads 1' : 'the one CPU this process may run on';
    return gcHere
      ? `kernels and garbage collection on its own thread (${why}, node --single-threaded-gc)`
      : `kernels on its own thread (${why}; node --single-threaded-gc keeps the garbage collector there too)`;
  }
  return threads === null ? `kernels on ${cores} worker threads (one per core)` : `kernels on ${threads} worker threads (--threads ${threads})`;
}
