/** `worker --cpus LIST` and launch's halves: CPU lists read and written, the halves of two workers, why pinning is not done. */
import test from 'ava';
import { CpuAffinityError, allowedCpus, cpuHalves, cpuPlace, formatCpuList, parseCpuList, pinningUnavailable, type CpuPlace } from '../src/cpu-affinity.js';
import { planCpus, type CpuHost } from '../src/launch-devices.js';

test('a CPU list is numbers and ranges separated by commas, sorted and without repeats', (t) => {
  t.deepEqual(parseCpuList('0'), [0]);
  t.deepEqual(parseCpuList('0-3,6'), [0, 1, 2, 3, 6]);
  t.deepEqual(parseCpuList(' 6, 2-3 ,3'), [2, 3, 6]);
  for (const bad of ['', ' ', 'x', '1-', '-1', '3-1', '0,,1', '1.5', '0-70000']) {
    const e = t.throws(() => parseCpuList(bad), { instanceOf: CpuAffinityError });
    t.regex(e!.message, /^--cpus /, bad);
  }
});

test('a CPU list is written back with ranges', (t) => {
  t.is(formatCpuList([0, 1, 2, 3, 6]), '0-3,6');
  t.is(formatCpuList([5, 1, 0, 1]), '0-1,5');
  t.is(formatCpuList([7]), '7');
  for (const s of ['0-3,6', '1,3,5', '0-63']) t.is(formatCpuList(parseCpuList(s)), s);
});

test('the CPUs a process may run on come from Cpus_allowed_list, and are unknown without it', (t) => {
  t.deepEqual(allowedCpus(() => 'Name:\tnode\nCpus_allowed:\tf\nCpus_allowed_list:\t0-2,4\nMems_allowed:\t1\n'), [0, 1, 2, 4]);
  t.is(allowedCpus(() => 'Name:\tnode\n'), null);
  t.is(
    allowedCpus(() => {
      throw new Error('ENOENT');
    }),
    null,
  );
  // on this machine (Linux in CI): at least the CPU this test runs on
  if (process.platform === 'linux') t.true(allowedCpus()!.length >= 1);
});

/** A host of `packages` x `cores` x `threads` numbered as Linux usually does: every core's first thread, then every core's second. */
function smtHost(packages: number, cores: number, threads: number): (cpu: number) => CpuPlace {
  const n = packages * cores;
  return (cpu) => {
    const core = cpu % n;
    return { pkg: Math.floor(core / cores), core: Array.from({ length: threads }, (_, k) => core + k * n) };
  };
}

test('two workers get the two halves of the cores: CPUs without topology, SMT siblings together, one package before the next', (t) => {
  const flat = () => null;
  t.deepEqual(cpuHalves([0, 1], flat), [[0], [1]]);
  t.deepEqual(cpuHalves([0, 1, 2, 3], flat), [
    [0, 1],
    [2, 3],
  ]);
  t.deepEqual(cpuHalves([2, 3, 5], flat), [[2], [3]], 'an odd core is used by neither');
  t.is(cpuHalves([0], flat), null);
  // 4 cores x 2 threads, cpu4 the sibling of cpu0: each worker gets whole cores, not cpu0-3 against their siblings
  t.deepEqual(cpuHalves([0, 1, 2, 3, 4, 5, 6, 7], smtHost(1, 4, 2)), [
    [0, 1, 4, 5],
    [2, 3, 6, 7],
  ]);
  // 2 packages x 2 cores x 2 threads: a package each
  t.deepEqual(cpuHalves([0, 1, 2, 3, 4, 5, 6, 7], smtHost(2, 2, 2)), [
    [0, 1, 4, 5],
    [2, 3, 6, 7],
  ]);
  // one core, two hardware threads: a thread each
  t.deepEqual(cpuHalves([0, 1], smtHost(1, 1, 2)), [[0], [1]]);
  // only some CPUs allowed (a cpuset): their cores, siblings outside the set left out
  t.deepEqual(cpuHalves([1, 2, 5, 6], smtHost(1, 4, 2)), [
    [1, 5],
    [2, 6],
  ]);
});

test("a CPU's place is read from sysfs (core_cpus_list, or thread_siblings_list on older kernels), and unknown without it", (t) => {
  const files: Record<string, string> = { '/sys/devices/system/cpu/cpu3/topology/physical_package_id': '1\n', '/sys/devices/system/cpu/cpu3/topology/thread_siblings_list': '3,11\n' };
  const read = (f: string) => {
    if (!(f in files)) throw new Error(`ENOENT ${f}`);
    return files[f]!;
  };
  t.deepEqual(cpuPlace(3, read), { pkg: 1, core: [3, 11] });
  t.is(cpuPlace(4, read), null);
  if (process.platform === 'linux') t.true(cpuPlace(allowedCpus()![0]!)?.core.includes(allowedCpus()![0]!) ?? true);
});

test('pinning is done on Linux with taskset; elsewhere launch says why not', (t) => {
  t.regex(pinningUnavailable('darwin')!, /Linux only \(this is darwin\)/);
  t.regex(pinningUnavailable('linux', () => false)!, /needs taskset \(util-linux\)/);
  t.is(pinningUnavailable('linux', () => true), null);
});

test("launch's plan: CPU workers on halves of the cores, GPU workers and --no-pin-cpus not pinned, and why not where it cannot", (t) => {
  const flat = (a: readonly number[]) => cpuHalves(a, () => null);
  const allowedHere = () => null;
  // a Linux host with taskset, these CPUs, flat or given halves, and the affinity allowed unless said
  const host = (allowed: number[] | null, o: CpuHost = {}): CpuHost => ({ platform: 'linux', unavailable: () => null, allowed: () => allowed, halvesOf: flat, refused: allowedHere, ...o });
  t.deepEqual(planCpus(true, true, host([0, 1, 2, 3])).cpus, ['0-1', '2-3']);
  t.deepEqual(planCpus(true, true, host([0, 1, 2, 3, 4, 5, 6, 7], { halvesOf: (a) => cpuHalves(a, smtHost(1, 4, 2)) })).cpus, ['0-1,4-5', '2-3,6-7']);
  t.regex(planCpus(true, true, host([0, 1])).line!, /^worker 0 on CPU 0, worker 1 on CPU 1 \(.*--no-pin-cpus/);
  t.deepEqual(planCpus(false, true, host([0, 1])), { cpus: null, line: null });
  t.deepEqual(planCpus(true, false, host([0, 1])), { cpus: null, line: null });
  t.deepEqual(planCpus(true, true, host([0])), { cpus: null, line: 'workers not pinned to cores: this process may run on 1 CPU only' });
  // not Linux: nothing the user could change, nothing said
  t.deepEqual(planCpus(true, true, host([0, 1], { platform: 'darwin' })), { cpus: null, line: null });
  t.deepEqual(planCpus(true, true, host([0, 1], { unavailable: () => 'pinning to CPUs needs taskset (util-linux), which is not installed' })), {
    cpus: null,
    line: 'workers not pinned to cores: pinning to CPUs needs taskset (util-linux), which is not installed',
  });
  // a container that refuses the affinity: launch runs unpinned rather than failing its workers
  t.deepEqual(planCpus(true, true, host([0, 1], { refused: () => 'taskset could not set the affinity (Operation not permitted)' })), {
    cpus: null,
    line: 'workers not pinned to cores: taskset could not set the affinity (Operation not permitted)',
  });
});
