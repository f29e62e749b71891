/** Helpers for the cross-package tests: real `alexnet` processes on loopback. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import readline from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import gpujs from 'gpu.js';
import { alexnetBin } from '@alexnet-mp/coordinator';
import { maxRelError as coreMaxRelError, processAlive } from '@alexnet-mp/core';

export interface Proc {
  readonly proc: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the exit code (or 128 + signal number's name) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line (stdout or stderr, past or future) that matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  output(): string;
}

/**
 * Runs `node bin/alexnet.mjs ...args`, or with `netns` inside that network namespace (`ip netns exec`, as
 * root); `nodeArgs`: Node.js flags before the script, `env`: the process's environment (default: this one's),
 * `cwd`: its working folder (default: this one's), `stdin`: `pipe` to write to it or close it (default: none).
 */
export function alexnet(args: string[], o: { netns?: string; nodeArgs?: readonly string[]; env?: NodeJS.ProcessEnv; cwd?: string; stdin?: 'ignore' | 'pipe' } = {}): Proc {
  const argv = [process.execPath, ...(o.nodeArgs ?? []), alexnetBin, ...args];
  const opts = { stdio: [o.stdin ?? 'ignore', 'pipe', 'pipe'] as ['ignore' | 'pipe', 'pipe', 'pipe'], env: o.env ?? process.env, cwd: o.cwd };
  const proc = o.netns ? spawn('ip', ['netns', 'exec', o.netns, ...argv], opts) : spawn(argv[0]!, argv.slice(1), opts);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const watchers: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  const onLine = (buf: string[]) => (line: string) => {
    buf.push(line);
    for (const w of [...watchers]) {
      const m = w.re.exec(line);
      if (m) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  readline.createInterface({ input: proc.stdout! }).on('line', onLine(stdout));
  readline.createInterface({ input: proc.stderr! }).on('line', onLine(stderr));
  // the process's output is all read before `exited` says it ended ('exit' can come first on a loaded machine); a
  // descendant that keeps a pipe open (none should) holds it back 2 s at most
  const ended = (s: import('node:stream').Readable) => new Promise<void>((resolve) => (s.readableEnded ? resolve() : s.once('end', resolve).once('close', resolve)));
  const outputRead = Promise.all([ended(proc.stdout!), ended(proc.stderr!)]);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => void Promise.race([outputRead, new Promise((r) => setTimeout(r, 2000))]).then(() => resolve({ code, signal }))),
  );
  const output = () => [...stdout, ...stderr].join('\n');
  return {
    proc,
    stdout,
    stderr,
    exited,
    output,
    waitFor(re, timeoutMs = 60_000) {
      for (const line of [...stdout, ...stderr]) {
        const m = re.exec(line);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output so far:\n${output()}`)), timeoutMs);
        watchers.push({
          re,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        void exited.then(() =>
          setTimeout(() => {
            clearTimeout(timer);
            reject(new Error(`exited before a line matching ${re}; output:\n${output()}`));
          }, 50),
        );
      });
    },
  };
}

/**
 * Starts `alexnet worker` on a free port (unless `extra` gives --port; webasm unless told, failing on any fallback); killed when the test ends
 * (or, given a function instead of a test, when that function's callback is called).
 */
export async function startWorker(t: ExecutionContext | ((cleanup: () => Promise<void>) => void), tower: 0 | 1, extra: string[] = [], backend: 'webasm' | 'webgpu' = 'webasm'): Promise<{ p: Proc; address: string }> {
  const p = alexnet(['worker', '--tower', String(tower), ...(extra.includes('--port') ? [] : ['--port', '0']), '--backend', backend, '--on-fallback', 'throw', ...extra]);
  const register = typeof t === 'function' ? t : (f: () => Promise<void>) => t.teardown(f);
  register(async () => {
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      p.proc.kill('SIGKILL');
      await p.exited;
    }
  });
  // a worker starts in a few seconds; a loaded machine (CI on 2 cores) has taken over a minute
  const m = await p.waitFor(/listening on (\S+)$/, 150_000);
  return { p, address: m[1]! };
}

/** Whether a process with this pid exists (a zombie counts: it has not been reaped). */
export const alive = processAlive;

/** core's maxRelError with a tight floor: the distributed run must match its oracle almost exactly. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>, atol = 1e-6): number {
  return coreMaxRelError(a, b, atol);
}

/** The pids `alexnet launch` printed for its children (its stderr lines), by name: worker0, worker1, coord. */
export function childPids(lines: string[]): Record<string, number> {
  const pids: Record<string, number> = {};
  for (const l of lines) {
    const m = /^\[launch\] (worker0|worker1|coord): pid (\d+)$/.exec(l);
    if (m) pids[m[1]!] = Number(m[2]);
  }
  return pids;
}

/**
 * `npm run bench -- ARGS --json` in its own process group (bench/main.ts re-executes itself), killed
 * whole on a timeout: its exit status, the JSON lines it printed, and its stderr.
 */
export function runBench(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; signal: NodeJS.Signals | null; json: Record<string, unknown>[]; err: string }> {
  const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  const p = spawn(process.execPath, ['--import', 'tsx', 'bench/main.ts', ...args, '--json'], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => process.kill(-p.pid!, 'SIGKILL'), 300_000);
  return new Promise((resolve) => {
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      const json = out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, signal, json, err });
    });
  });
}

/** The part of gpu.js's shared WebGPU device the tests use to break it (device-lost, gpu-errors). */
export interface GpujsDevice {
  destroy(): void;
  createBuffer(d: { size: number; usage: number }): unknown;
  queue: { submit(buffers: unknown[]): void };
}

/** gpu.js's WebGPU device (its webgpu backend shares one among all kernels of a process). */
export async function gpujsDevice(): Promise<GpujsDevice> {
  const { WebGPUContext } = gpujs as unknown as { WebGPUContext: { acquire(): Promise<{ device: GpujsDevice }> } };
  return (await WebGPUContext.acquire()).device;
}

/**
 * The environment for a run in which the first process to reach its `atSubmit`-th queue submit on WebGPU loses
 * its device (test/fixtures/lose-gpu-device.mjs, preloaded), once: it creates `marker` then.
 */
export function losingGpuDevice(marker: string, atSubmit: number): NodeJS.ProcessEnv {
  const fixture = path.join(import.meta.dirname, 'fixtures', 'lose-gpu-device.mjs');
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${fixture}`.trim(),
    ALEXNET_TEST_LOSE_DEVICE_AT_SUBMIT: String(atSubmit),
    ALEXNET_TEST_LOSE_DEVICE_ONCE: marker,
  };
}

/** A folder in the system's temporary folder, removed when the test ends. */
export function tempDir(t: { teardown(f: () => void): void }, prefix = 'alexnet-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A line of RUN_DIR/metrics.jsonl: the fields the tests look at. */
export interface RunEvent {
  event: string;
  step?: number;
  loss?: number;
  reason?: string;
  workers?: { backend: string }[];
  checkpoint?: string | null;
  start_step?: number;
  resumed_from?: string | null;
  steps?: number;
}

/** Every line of RUN_DIR/metrics.jsonl, parsed. */
export const runEvents = (runDir: string): RunEvent[] => fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RunEvent);

/** Each step's loss as [step, loss], by step, the last line of a step trained twice (after a restart or a requeue) counting. */
export function stepLosses(runDir: string): [number, number][] {
  const m = new Map<number, number>();
  for (const e of runEvents(runDir)) if (e.event === 'step') m.set(e.step!, e.loss!);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}
