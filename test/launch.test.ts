/** `alexnet launch` as a user runs it: real processes, ports from the OS, clean exits. */
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { alexnet, alive, childPids } from './helpers.js';
import { reservedPort } from './ports.js';

const common = ['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '8'];

test('launch trains a few steps, writes its run directory and exits 0 leaving no process behind', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-launch-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  // with an evaluation after step 2 and after the last step, on batches of another size than training's
  const p = alexnet([...common, '--steps', '3', '--eval-every', '2', '--eval-batch', '5', '--eval-batches', '2', '--run-dir', runDir]);
  const { code } = await p.exited;
  t.is(code, 0, p.output());
  const pids = childPids(p.stderr);
  t.deepEqual(Object.keys(pids).sort(), ['coord', 'worker0', 'worker1']);
  for (const [name, pid] of Object.entries(pids)) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
  // prefixed output from all three
  for (const prefix of ['[worker0] ', '[worker1] ', '[coord] ']) t.true(p.stdout.some((l) => l.startsWith(prefix)), `lines prefixed ${prefix}`);
  const events = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; loss?: number; step?: number; images?: number; top1_error?: number });
  // a run folder always gets a checkpoint after the last step
  t.deepEqual(events.map((e) => e.event), ['run', 'step', 'step', 'eval', 'step', 'checkpoint', 'eval', 'done'], 'the last checkpoint before the last evaluation');
  t.deepEqual(fs.readdirSync(path.join(runDir, 'checkpoints')), ['step-000000003.safetensors']);
  t.true(events.filter((e) => e.event === 'step').every((e) => Number.isFinite(e.loss)));
  const evals = events.filter((e) => e.event === 'eval');
  t.deepEqual(evals.map((e) => [e.step, e.images]), [[2, 10], [3, 10]]);
  t.true(evals.every((e) => Number.isFinite(e.loss) && e.top1_error! >= 0 && e.top1_error! <= 1));
  t.true(fs.existsSync(path.join(runDir, 'run.json')));
  for (const f of ['worker0.log', 'worker1.log', 'coord.log']) t.true(fs.existsSync(path.join(runDir, f)), f);
  // coord.log: the coordinator's lines but its step lines, which metrics.jsonl has
  const coordLog = fs.readFileSync(path.join(runDir, 'coord.log'), 'utf8');
  t.notRegex(coordLog, /^\{"event":"step"/m);
  t.regex(coordLog, /^\{"event":"checkpoint"/m);
  // on CPUs the two workers share the cores: half each, said by launch and by each worker
  const threads = Math.max(1, Math.floor(os.availableParallelism() / 2));
  t.true(p.stderr.some((l) => l.startsWith(`[launch] this machine's ${os.availableParallelism()} CPU cores: ${threads} kernel thread`)), p.output());
  // with one thread each, launch gives the workers V8's garbage collector on it (unless ALEXNET_SINGLE_THREADED_GC=0)
  const gcHere = process.env.ALEXNET_SINGLE_THREADED_GC !== '0';
  const one = gcHere ? 'kernels and garbage collection on its own thread (--threads 1, node --single-threaded-gc)' : 'kernels on its own thread (--threads 1;';
  const own = threads === 1 ? one : `kernels on ${threads} worker threads (--threads ${threads})`;
  for (const w of ['[worker0] ', '[worker1] ']) t.true(p.stdout.some((l) => l.startsWith(w) && l.includes(own)), `${w}: ${own}`);
});

test('with --max-restarts 0, a worker killed mid-run ends the run: launch names it, exits non-zero and leaves no process behind', async (t) => {
  const p = alexnet([...common, '--steps', '100000', '--max-restarts', '0']);
  t.teardown(() => {
    if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  });
  await p.waitFor(/"event":"step","step":2,/, 120_000);
  const pids = childPids(p.stderr);
  t.truthy(pids.worker1);
  // the workers run with glibc's malloc reusing big blocks (malloc-tuning.ts); Linux shows a process's environment
  const environ = `/proc/${pids.worker1}/environ`;
  if (fs.existsSync(environ)) t.true(fs.readFileSync(environ, 'utf8').split('\0').some((v) => v.startsWith('GLIBC_TUNABLES=') && v.includes('glibc.malloc.mmap_max=0')), 'GLIBC_TUNABLES set');
  const killedAt = Date.now();
  process.kill(pids.worker1!, 'SIGKILL');
  const { code } = await p.exited;
  const took = Date.now() - killedAt;
  t.log(`launch exited ${took} ms after the kill`);
  t.not(code, 0);
  const err = p.stderr.join('\n');
  t.regex(err, /\[launch\] worker1 \(tower 1, pid \d+\) killed by signal SIGKILL/);
  t.regex(err, /stopping the run: worker1 died/);
  // the run's log says it failed, naming the worker, not that it was stopped
  const runEvents = p.stdout.filter((l) => l.startsWith('[coord] {')).map((l) => JSON.parse(l.slice(8)) as { event: string; error?: string });
  t.like(runEvents.at(-1), { event: 'failed' });
  t.regex(runEvents.at(-1)?.error ?? '', /worker 1 \(tower 1\)/);
  t.notRegex(err, /internal error|\n\s+at /, 'no stack trace');
  // seconds (launch gives the coordinator 10 s to end the run, then stops the workers), not a hang
  t.true(took < 60_000, 'no hang');
  for (const [name, pid] of Object.entries(pids)) t.false(alive(pid), `${name} (pid ${pid}) is gone`);
});

test('a coordinator killed under launch without --run-dir is not restarted, and launch says why', async (t) => {
  const p = alexnet([...common, '--steps', '100000']);
  t.teardown(() => {
    if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  });
  await p.waitFor(/"event":"step","step":2,/, 120_000);
  process.kill(childPids(p.stderr).coord!, 'SIGKILL');
  t.is((await p.exited).code, 1, p.output());
  t.regex(p.stderr.join('\n'), /\[launch\] the coordinator killed by signal SIGKILL; not restarted: without --run-dir it wrote no checkpoint to go on from/);
});

test('a coordinator restarted under launch keeps the time limit: it stops at the --stop-after first given, named as given', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-launch-stop-after-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  // the time limit counts from the coordinator's start: 60 s leave a loaded machine time to reach the first
  // checkpoint (after the first step) with more than a second to spare (a restart with less is refused)
  const p = alexnet([...common, '--steps', '100000', '--checkpoint-every', '1', '--stop-after', '60s', '--run-dir', runDir]);
  t.teardown(() => {
    if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  });
  await p.waitFor(/"event":"checkpoint"/, 120_000);
  process.kill(childPids(p.stderr).coord!, 'SIGKILL');
  t.is((await p.exited).code, 0, p.output());
  t.regex(p.stderr.join('\n'), /\[launch\] restarting the coordinator from its last checkpoint, step \d+/);
  const events = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; reason?: string });
  t.like(events.filter((e) => e.event === 'stopped').at(-1), { reason: '--stop-after 60s' });
});

test('a hung worker (its process stopped) is killed and started again: the run goes on from its checkpoint and finishes', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-launch-hung-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  // ports from below the ephemeral range (test/ports.ts): launch starts the killed worker again on its port
  const ports = [await reservedPort(), await reservedPort()];
  if (ports[0] === ports[1]) ports[1] = ports[0]! + 1;
  const p = alexnet([...common, '--ports', ports.join(','), '--steps', '30', '--checkpoint-every', '5', '--step-deadline', '10', '--wait-for-workers', '300', '--max-restarts', '1', '--run-dir', runDir]);
  t.teardown(() => {
    if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  });
  await p.waitFor(/"event":"checkpoint"/, 120_000);
  const pids = childPids(p.stderr);
  process.kill(pids.worker0!, 'SIGSTOP');
  const { code } = await p.exited;
  const err = p.stderr.join('\n');
  t.is(code, 0, p.output());
  t.regex(err, new RegExp(`\\[launch\\] worker0 \\(pid ${pids.worker0}\\) does not answer though its process lives \\(hung\\): killing it, to start it again`));
  t.regex(err, /\[launch\] restarting worker0 on \S+ \(restart 1 of 1\)/);
  t.false(alive(pids.worker0!), 'the hung process is gone');
  const events = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; tower?: number; pid?: number; steps?: number });
  t.like(events.find((e) => e.event === 'worker_lost'), { tower: 0, pid: pids.worker0 });
  t.like(events.at(-1), { event: 'done', steps: 30 });
});

test('a busy --ui-port, --inspect-port or worker port, one port for both workers, a host that does not resolve or is not this machine\'s, is one line before any worker starts', async (t) => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as net.AddressInfo).port;
  for (const option of ['--ui-port', '--inspect-port']) {
    const p = alexnet([...common, option, String(port)]);
    t.is((await p.exited).code, 2, p.output());
    t.deepEqual(p.stderr, [`alexnet: ${option} ${port}: cannot listen on 127.0.0.1:${port}: the port is in use (${option} 0 picks a free one)`]);
    t.deepEqual(p.stdout, [], 'no worker was started');
  }
  // a worker port: busy, or the same for both workers
  const w = alexnet([...common, '--ports', `${port},0`]);
  t.is((await w.exited).code, 2, w.output());
  t.deepEqual(w.stderr, [`alexnet: --ports ${port}: cannot listen on 127.0.0.1:${port}: the port is in use (--ports 0 picks a free one)`]);
  t.deepEqual(w.stdout, [], 'no worker was started');
  const same = alexnet([...common, '--ports', '5000,5000']);
  t.is((await same.exited).code, 2, same.output());
  t.deepEqual(same.stderr, ['alexnet: --ports 5000,5000 gives both workers port 5000: give two ports (0: the OS picks a free one)']);
  // port 0 too: a host name that does not resolve, an address not of this machine (".invalid" never resolves: RFC 6761)
  for (const [args, line] of [
    [['--ui-port', '0', '--ui-host', 'nosuch.invalid', '--ui-insecure'], 'alexnet: --ui-port 0: cannot listen on nosuch.invalid:0: the name nosuch.invalid does not resolve'],
    [['--inspect-port', '0', '--inspect-host', 'nosuch.invalid'], 'alexnet: --inspect-port 0: cannot listen on nosuch.invalid:0: the name nosuch.invalid does not resolve'],
    [['--host', '192.0.2.1'], 'alexnet: --ports 0: cannot listen on 192.0.2.1:0: no such address on this machine'],
  ] as const) {
    const bad = alexnet([...common, ...args]);
    t.is((await bad.exited).code, 2, bad.output());
    t.deepEqual(bad.stderr, [line]);
    t.deepEqual(bad.stdout, [], 'no worker was started');
  }
});
