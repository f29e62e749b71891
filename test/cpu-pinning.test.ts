/**
 * CPU workers on cores of their own (packages/coordinator/src/cpu-affinity.ts): `worker --cpus` pins every
 * thread of the process, a CPU the process may not use is one line, and launch gives its two CPU workers
 * the two halves of the machine's cores.
 */
import test from 'ava';
import fs from 'node:fs';
import { allowedCpus, cpuHalves, formatCpuList, pinningRefused, pinningUnavailable } from '@alexnet-mp/coordinator';
import { alexnet, startWorker } from './helpers.js';

const allowed = allowedCpus() ?? [];
// Linux with a taskset that may set the affinity here (a container may refuse it)
const linux = process.platform === 'linux' && pinningUnavailable() === null && allowed.length > 0 && pinningRefused(allowed.slice(0, 1)) === null ? test : test.skip;

/** Cpus_allowed_list of every thread of process `pid`. */
function threadCpus(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]!);
}

linux('worker --cpus N runs every thread of the worker, its kernel threads included, on CPU N', async (t) => {
  const cpu = allowed[allowed.length - 1]!;
  const { p } = await startWorker(t, 0, ['--cpus', String(cpu), '--threads', '2']);
  const first = await p.waitFor(/preset tiny, .*pid (\d+), CPU (\d+),/);
  t.is(Number(first[2]), cpu);
  const threads = threadCpus(Number(first[1]));
  // every thread: those that ran before the pinning (the main one, V8's) and those started after it
  t.true(threads.length >= 3, `${threads.length} threads`);
  t.deepEqual([...new Set(threads)], [String(cpu)]);
});

linux('worker --cpus N without --threads runs its kernels on its own thread: a pool thread on the one CPU would only add the hand-over', async (t) => {
  const cpu = allowed[0]!;
  const { p } = await startWorker(t, 1, ['--cpus', String(cpu)]);
  const first = await p.waitFor(/preset tiny, .*$/);
  t.regex(first[0], new RegExp(`, CPU ${cpu}, kernels on its own thread \\(the one CPU this process may run on; `));
});

linux('a CPU this process may not use, or a malformed list, is one line and exit status 2', async (t) => {
  for (const [cpus, message] of [
    ['4096', /^alexnet: --cpus 4096: this process may run on CPUs? [\d,-]+ only \(not 4096\)$/],
    ['1-x', /^alexnet: --cpus 1-x: give CPU numbers and ranges separated by commas, e\.g\. 0-3 or 0,2$/],
    ['0 --cpus 0', /^alexnet: --cpus is given twice \(0 and 0\): give it once$/],
  ] as const) {
    const p = alexnet(['worker', '--tower', '0', '--port', '0', '--cpus', ...cpus.split(' --cpus ').flatMap((c, i) => (i === 0 ? [c] : ['--cpus', c]))]);
    const { code } = await p.exited;
    t.is(code, 2, cpus);
    t.deepEqual(p.stderr.length, 1, p.output());
    t.regex(p.stderr[0]!, message);
  }
});

linux('launch pins its two CPU workers to the two halves of the cores, and --no-pin-cpus leaves them to the scheduler', async (t) => {
  const pinned = alexnet(['launch', '--steps', '2', '--backend', 'webasm']);
  t.is((await pinned.exited).code, 0, pinned.output());
  if (cpuHalves(allowed) !== null) {
    const [w0, w1] = cpuHalves(allowed)!;
    const list = (l: number[]) => `CPU${l.length === 1 ? '' : 's'} ${formatCpuList(l)}`;
    t.true(pinned.stderr.some((l) => l.startsWith(`[launch] worker 0 on ${list(w0)}, worker 1 on ${list(w1)} (`)), pinned.output());
    t.true(pinned.stdout.some((l) => l.startsWith('[worker0] ') && l.includes(`, ${list(w0)}, `)), pinned.output());
    t.true(pinned.stdout.some((l) => l.startsWith('[worker1] ') && l.includes(`, ${list(w1)}, `)), pinned.output());
  } else {
    t.true(pinned.stderr.some((l) => l.startsWith('[launch] workers not pinned to cores: this process may run on 1 CPU only')), pinned.output());
  }
  const free = alexnet(['launch', '--steps', '2', '--backend', 'webasm', '--no-pin-cpus']);
  t.is((await free.exited).code, 0, free.output());
  t.false(/worker 0 on CPU|not pinned|, CPUs? \d/.test(free.output()), free.output());
});
