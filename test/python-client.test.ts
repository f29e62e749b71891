/**
 * The reference client in another language (examples/python/alexnet_client.py, stubs generated from proto/ at
 * start) drives two real workers: its losses, its evaluation and the parameters it reads (in chunks) equal the
 * TypeScript coordinator's for the same seed, batches and hyper-parameters, on the same workers.
 *
 * Needs a Python 3 with grpcio and grpcio-tools: `python3` or Debian's /usr/bin/python3; when neither has them
 * and this runs as root with apt-get (CI: Debian 12), it installs python3-grpcio and python3-grpc-tools, and
 * fails with the reason when it cannot.
 */
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getPreset, modelHash } from '@alexnet-mp/core';
import { Coordinator, SyntheticSource, type U8Batch } from '@alexnet-mp/coordinator';
import { startWorker } from './helpers.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const client = path.join(root, 'examples', 'python', 'alexnet_client.py');
const spec = getPreset('tiny');
const B = 8;
const STEPS = 3;
const SEED = 11;
const EVAL = 6;
const hyper = { lr: 0.02, momentum: 0.9, weightDecay: 0.0005 };

const hasGrpc = (python: string) => spawnSync(python, ['-c', 'import grpc, grpc_tools.protoc'], { stdio: 'ignore' }).status === 0;

/** A Python with grpcio and grpcio-tools, installing Debian's packages when none has them; or why there is none. */
function findPython(): { python: string } | { why: string } {
  const candidates = ['python3', '/usr/bin/python3'];
  for (const p of candidates) if (hasGrpc(p)) return { python: p };
  if (process.getuid?.() !== 0) return { why: 'no python3 with grpcio and grpcio-tools, and not root to apt-get install python3-grpcio python3-grpc-tools' };
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return { why: 'no python3 with grpcio and grpcio-tools, and no apt-get to install them' };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // the Slurm tests may be installing at the same time: wait for the package lock rather than fail on it
  const install = () => spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', 'python3-grpcio', 'python3-grpc-tools'], { env, encoding: 'utf8', timeout: 600_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update'], { env, stdio: 'ignore', timeout: 300_000 });
    r = install();
  }
  if (r.status !== 0) return { why: `apt-get install python3-grpcio python3-grpc-tools failed (exit ${r.status}): ${`${r.stderr}${r.stdout}`.trim().split('\n').slice(-3).join(' / ')}` };
  for (const p of candidates) if (hasGrpc(p)) return { python: p };
  return { why: 'python3-grpcio and python3-grpc-tools are installed but no python3 imports grpc and grpc_tools' };
}

interface Event {
  event: string;
  step?: number;
  loss?: number;
  top1?: number;
  tensors?: number;
  messages?: number;
  tower?: number;
}

function runClient(python: string, args: string[]): Promise<{ code: number | null; events: Event[]; err: string }> {
  const p = spawn(python, [client, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), 300_000);
  return new Promise((resolve) => {
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, err, events: out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Event) });
    });
  });
}

test('the Python client from proto/ drives two workers: its losses, evaluation and parameters equal the TypeScript coordinator\'s for the same seed and batches', async (t) => {
  const found = findPython();
  if ('why' in found) {
    t.fail(found.why);
    return;
  }
  const { python } = found;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-python-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // the batches of the run, then the evaluation's, in the client's --data format: images, then uint32 labels
  const source = new SyntheticSource(spec, SEED);
  const batches: U8Batch[] = [];
  for (let s = 0; s < STEPS; s++) batches.push(await source.batch(s, B));
  const evalBatch = await source.batch(1000, EVAL);
  const data = path.join(dir, 'batches.bin');
  fs.writeFileSync(data, Buffer.concat([...batches, evalBatch].flatMap((b) => [Buffer.from(b.images), Buffer.from(new Uint32Array(b.labels).buffer)])));

  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const saved = path.join(dir, 'parameters');
  const py = await runClient(python, [
    '--workers', `${w0.address},${w1.address}`, '--preset', 'tiny', '--model-hash', modelHash(spec),
    '--batch', String(B), '--steps', String(STEPS), '--seed', String(SEED), '--lr', String(hyper.lr), '--momentum', String(hyper.momentum),
    '--weight-decay', String(hyper.weightDecay), '--eval-batch', String(EVAL), '--data', data, '--max-chunk-bytes', '128', '--save-parameters', saved,
  ]);
  t.is(py.code, 0, py.err);
  t.log(`${python}: ${execFileSync(python, ['-c', 'import grpc; print("grpcio", grpc.__version__)'], { encoding: 'utf8' }).trim()}`);

  // the same run from the TypeScript coordinator, on the same workers (configuring again starts afresh)
  const c = new Coordinator({ spec, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source, evalBatch: EVAL });
  t.teardown(() => c.close());
  await c.start();
  const losses: number[] = [];
  for (const b of batches) losses.push((await c.step(b)).loss);
  const ev = await c.evaluateBatch(evalBatch);

  const steps = py.events.filter((e) => e.event === 'step');
  t.deepEqual(steps.map((e) => e.loss), losses, 'every step\'s loss, bit for bit');
  t.log(`losses: python ${steps.map((e) => e.loss).join(', ')}; typescript ${losses.join(', ')}`);
  const pyEval = py.events.find((e) => e.event === 'evaluate')!;
  t.deepEqual([pyEval.loss, pyEval.top1], [ev.loss, ev.correct], 'the evaluation');
  // parameters read in chunks of 128 bytes by Python, whole by TypeScript
  const params = py.events.filter((e) => e.event === 'parameters');
  for (const tw of [0, 1] as const) {
    const mine = await c.clients[tw].parameters(false);
    const p = params.find((e) => e.tower === tw)!;
    t.is(p.tensors, mine.size * 2);
    t.true(p.messages! > p.tensors!, `tower ${tw}: ${p.messages} messages for ${p.tensors} tensors`);
    for (const [layer, x] of mine) {
      for (const kind of ['w', 'b'] as const) {
        const file = fs.readFileSync(path.join(saved, `tower${tw}-${layer}.${kind}.f32`));
        t.true(file.equals(Buffer.from(x[kind].buffer, x[kind].byteOffset, x[kind].byteLength)), `tower ${tw} ${layer}.${kind}`);
      }
    }
  }
});

test('the Python client: a mistake is one line and exit status 2', async (t) => {
  const found = findPython();
  if ('why' in found) {
    t.fail(found.why);
    return;
  }
  const r = await runClient(found.python, ['--workers', '127.0.0.1:1', '--model-hash', 'x']);
  t.is(r.code, 2);
  t.is(r.err.trim(), "alexnet_client: --workers: two addresses, tower 0 first (got '127.0.0.1:1')");
  const w = await runClient(found.python, ['--workers', '127.0.0.1:9,127.0.0.1:10', '--model-hash', 'x', '--timeout', '1']);
  t.is(w.code, 2);
  t.regex(w.err.trim(), /^alexnet_client: Handshake with tower 0 at 127\.0\.0\.1:9: DEADLINE_EXCEEDED: /);
});
