/** `worker --cpus LIST` and launch's halves: CPU lists read and written, the halves of two workers, why pinning is not done. */
import test from 'ava';
import { CpuAffinityError, allowedCpus, cpuHalves, formatCpuList, parseCpuList, pinningUnavailable } from '../src/cpu-affinity.js';
import { planCpus } from '../src/launch-devices.js';

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

test('two workers get the lower and the upper half; an odd CPU is left over; one CPU gives no halves', (t) => {
  t.deepEqual(cpuHalves([0, 1]), [[0], [1]]);
  t.deepEqual(cpuHalves([0, 1, 2, 3]), [
    [0, 1],
    [2, 3],
  ]);
  t.deepEqual(cpuHalves([2, 3, 5]), [[2], [3]]);
  t.is(cpuHalves([0]), null);
});

test('pinning is done on Linux with taskset; elsewhere launch says why not', (t) => {
  t.regex(pinningUnavailable('darwin')!, /Linux only \(this is darwin\)/);
  t.regex(pinningUnavailable('linux', () => false)!, /needs taskset \(util-linux\)/);
  t.is(pinningUnavailable('linux', () => true), null);
});

test("launch's plan: CPU workers on halves of the cores, GPU workers and --no-pin-cpus not pinned, and why not where it cannot", (t) => {
  t.deepEqual(planCpus(true, true, [0, 1, 2, 3], null).cpus, ['0-1', '2-3']);
  t.regex(planCpus(true, true, [0, 1], null).line!, /^worker 0 on CPU 0, worker 1 on CPU 1 \(.*--no-pin-cpus/);
  t.deepEqual(planCpus(false, true, [0, 1], null), { cpus: null, line: null });
  t.deepEqual(planCpus(true, false, [0, 1], null), { cpus: null, line: null });
  t.deepEqual(planCpus(true, true, [0], null), { cpus: null, line: 'workers not pinned to cores: this process may run on 1 CPU only' });
  t.deepEqual(planCpus(true, true, [0, 1], 'pinning to CPUs is done on Linux only (this is darwin)'), { cpus: null, line: 'workers not pinned to cores: pinning to CPUs is done on Linux only (this is darwin)' });
});
