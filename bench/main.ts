/**
 * `npm run bench -- [--distributed] ...`: the one-process training step against the
 * TensorFlow.js peer (bench/train-step.ts), or with --distributed the two-worker run
 * against the one-process run (bench/distributed.ts). `--help` on either.
 */
const i = process.argv.indexOf('--distributed');
if (i >= 0) {
  process.argv.splice(i, 1);
  await import('./distributed.js');
} else {
  await import('./train-step.js');
}
