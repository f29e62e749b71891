/** malloc-tuning.ts: the GLIBC_TUNABLES that training processes are started with. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { MALLOC_TUNABLES, mallocDescription, mallocTuned, withMallocTuning } from '../src/malloc-tuning.js';

test("added to the environment, keeping the user's own settings, and left alone when asked", (t) => {
  t.is(withMallocTuning({ PATH: '/bin' }).GLIBC_TUNABLES, MALLOC_TUNABLES.join(':'));
  t.is(withMallocTuning({}).PATH, undefined);
  // a setting of the same key given by the user wins; other keys are kept
  t.is(withMallocTuning({ GLIBC_TUNABLES: 'glibc.malloc.mmap_max=4:glibc.cpu.x86_ibt=off' }).GLIBC_TUNABLES, 'glibc.malloc.mmap_max=4:glibc.cpu.x86_ibt=off:glibc.malloc.trim_threshold=4294967295');
  const tuned = withMallocTuning({});
  t.is(withMallocTuning(tuned), tuned, 'once is enough');
  t.true(mallocTuned(tuned));
  t.false(mallocTuned({}));
  const off = { ALEXNET_MALLOC_TUNING: '0' };
  t.is(withMallocTuning(off), off);
  t.true(mallocTuned(off));
  t.regex(mallocDescription(off), /glibc malloc defaults \(ALEXNET_MALLOC_TUNING=0\)/);
  t.regex(mallocDescription(tuned), /^GLIBC_TUNABLES=glibc\.malloc\.mmap_max=0:/);
});

test('a process started with them runs (glibc accepts the settings)', (t) => {
  const r = spawnSync(process.execPath, ['-e', 'const a = new Float32Array(1 << 24).fill(1); console.log(a.slice(1).length)'], { env: withMallocTuning(process.env), encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), String((1 << 24) - 1));
});

test('ALEXNET_MALLOC_TUNING=off (or false, no, 0) leaves glibc its defaults, as 0 does', (t) => {
  for (const v of ['0', 'off', 'OFF', 'false', 'no']) {
    const env = { ALEXNET_MALLOC_TUNING: v };
    t.is(withMallocTuning(env), env, v);
    t.true(mallocDescription(env).startsWith(`glibc malloc defaults (ALEXNET_MALLOC_TUNING=${v})`), v);
  }
  t.regex(withMallocTuning({ ALEXNET_MALLOC_TUNING: '1' }).GLIBC_TUNABLES ?? '', /mmap_max=0/);
});
