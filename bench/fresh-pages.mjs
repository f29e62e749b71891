// Copying 13 M floats (conv2's im2col on the cifar preset) into a new array, as gpu.js's webasm
// kernels return every result: run as is, and with the GLIBC_TUNABLES that launch sets
// (packages/coordinator/src/malloc-tuning.ts), to see what fresh pages cost on this machine:
//   node bench/fresh-pages.mjs
//   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295 node bench/fresh-pages.mjs
// no options: --help says so, anything else is refused
const args = process.argv.slice(2);
if (args.length > 0) {
  const help = args.includes('--help') || args.includes('-h');
  (help ? process.stdout : process.stderr).write(`${help ? '' : `fresh-pages.mjs: takes no options (${args.join(' ')}); `}usage: [GLIBC_TUNABLES=...] node bench/fresh-pages.mjs: the time to copy 13 M floats into a new array\n`);
  process.exit(help ? 0 : 2);
}
const n = 13_000_000;
const src = new Float32Array(n).fill(1);
const ms = [];
for (let i = 0; i < 8; i++) {
  const t0 = performance.now();
  const copy = src.slice(0, n);
  ms.push(performance.now() - t0);
  if (copy[n - 1] !== 1) throw new Error('bad copy');
}
const steady = ms.slice(2);
console.log(`GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? '(unset)'}: ${ms.map((x) => x.toFixed(0)).join(' ')} ms a copy; after the first two, ${((steady.reduce((a, b) => a + b) / steady.length / n) * 1e6).toFixed(1)} ns a float`);
