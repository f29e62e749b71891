/**
 * glibc malloc settings for the processes that train (workers, and the one-process benchmark).
 *
 * Why: on webasm every kernel call returns its result in a new Float32Array (gpu.js copies it out of
 * the module's memory), up to 13 M floats a call for the cifar preset's conv2 im2col. glibc serves
 * blocks that large with a fresh mmap and unmaps them when freed, so each call's result is written
 * into pages the kernel must fault in first; on this project's virtual machines that costs about
 * 20 ns a float, far more than the copy itself. With mmap off for the heap and no trimming, a freed
 * block is reused by the next call instead (bench/fresh-pages.mjs: 13 M floats copied in ~270 ms
 * before, 6-9 ms after). The price: a process keeps its high-water mark of memory until it exits.
 *
 * The variable is read by glibc when a process starts, so it is set for child processes (launch,
 * the benchmarks); ALEXNET_MALLOC_TUNING=0 (or off) leaves the environment alone. Elsewhere than glibc it is
 * ignored.
 */
export const MALLOC_TUNABLES: readonly string[] = ['glibc.malloc.mmap_max=0', 'glibc.malloc.trim_threshold=4294967295'];

/** ALEXNET_MALLOC_TUNING=0 (or off, false, no): glibc's defaults. */
const tuningOff = (env: NodeJS.ProcessEnv): boolean => ['0', 'off', 'false', 'no'].includes((env.ALEXNET_MALLOC_TUNING ?? '').trim().toLowerCase());

/** `env` with MALLOC_TUNABLES added to GLIBC_TUNABLES (a setting already there for the same key is kept). */
export function withMallocTuning(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (tuningOff(env)) return env;
  const given = (env.GLIBC_TUNABLES ?? '').split(':').filter((s) => s !== '');
  const keys = new Set(given.map((s) => s.split('=')[0]));
  const added = MALLOC_TUNABLES.filter((s) => !keys.has(s.split('=')[0]));
  return added.length === 0 ? env : { ...env, GLIBC_TUNABLES: [...given, ...added].join(':') };
}

/** Whether this process started with the tuning (or was told to go without it). */
export function mallocTuned(env: NodeJS.ProcessEnv = process.env): boolean {
  return withMallocTuning(env) === env;
}

/** One phrase for benchmark output: which malloc settings this process runs with. */
export function mallocDescription(env: NodeJS.ProcessEnv = process.env): string {
  if (tuningOff(env)) return `glibc malloc defaults (ALEXNET_MALLOC_TUNING=${env.ALEXNET_MALLOC_TUNING})${env.GLIBC_TUNABLES ? `, GLIBC_TUNABLES=${env.GLIBC_TUNABLES}` : ''}`;
  return mallocTuned(env) ? `GLIBC_TUNABLES=${env.GLIBC_TUNABLES}` : 'glibc malloc defaults';
}
