/**
 * Runs the PyTorch peer (bench/peer/torch_alexnet.py) for the training-step benchmark: the spec
 * goes to the script's standard input as JSON (getPreset's ModelSpec, read from
 * packages/core/src/model/presets.ts), with the parameter count the script's model must have.
 * Python is `$ALEXNET_PYTHON`, else `python3`. Where it cannot import torch (or there is no such
 * Python), the result says why and nothing was timed.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import type { ModelSpec } from '../../packages/core/src/model/spec.js';
import { countParameters } from '../../packages/core/src/model/shapes.js';

export const TORCH_PEER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_alexnet.py');

export interface TorchPeerOptions {
  spec: ModelSpec;
  batch: number;
  warmup: number;
  iters: number;
  /** auto: cuda where torch sees a GPU, else the CPU. */
  device?: 'auto' | 'cuda' | 'cpu';
  /** Python with torch (default: $ALEXNET_PYTHON, else python3). */
  python?: string;
  /** Killed after this long (default: none). */
  timeoutMs?: number;
  /** Each progress line of the script. */
  log?: (line: string) => void;
}

export interface TorchPeerResult {
  imagesPerSec: number;
  stepMs: number[];
  medianStepMs: number;
  firstLoss: number;
  lastLoss: number;
  description: string;
  torch: string;
  device: string;
  params: number;
}

export type TorchPeerOutcome = { ran: true; result: TorchPeerResult } | { ran: false; why: string };

export function torchPython(): string {
  return process.env.ALEXNET_PYTHON || 'python3';
}

export function runTorchPeer(opts: TorchPeerOptions): Promise<TorchPeerOutcome> {
  const python = opts.python ?? torchPython();
  const args = [TORCH_PEER_SCRIPT, '--batch', String(opts.batch), '--warmup', String(opts.warmup), '--iters', String(opts.iters), '--device', opts.device ?? 'auto', '--expect-params', String(countParameters(opts.spec).total)];
  return new Promise((resolve, reject) => {
    const p = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    let result: TorchPeerResult | null = null;
    let skipped: string | null = null;
    const errLines: string[] = [];
    const timer = opts.timeoutMs ? setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs) : null;
    readline.createInterface({ input: p.stdout! }).on('line', (line) => {
      if (line.startsWith('PEER_RESULT ')) result = JSON.parse(line.slice('PEER_RESULT '.length)) as TorchPeerResult;
      else if (line.startsWith('PEER_SKIP ')) skipped = line.slice('PEER_SKIP '.length);
      else opts.log?.(line);
    });
    readline.createInterface({ input: p.stderr! }).on('line', (line) => {
      errLines.push(line);
      if (errLines.length > 20) errLines.shift();
    });
    p.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (e.code === 'ENOENT') resolve({ ran: false, why: `no ${python} on this machine` });
      else reject(e);
    });
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (skipped !== null) resolve({ ran: false, why: skipped });
      else if (code === 0 && result !== null) resolve({ ran: true, result });
      else if (code === 127 && result === null) resolve({ ran: false, why: `${python} did not start: ${errLines.join(' ').trim()}` });
      else reject(new Error(`PyTorch peer (${python} ${TORCH_PEER_SCRIPT}) ${signal ? `killed (${signal}${timer && signal === 'SIGKILL' ? ', past its time limit' : ''})` : `exited ${code}`}: ${errLines.slice(-6).join('\n')}`));
    });
    p.stdin!.on('error', () => {}); // a script that died before reading the spec
    p.stdin!.end(JSON.stringify(opts.spec));
  });
}
