/**
 * `npm run bench -- [--distributed] ...`: the one-process training step against the
 * TensorFlow.js peer (bench/train-step.ts), or with --distributed the two-worker run
 * against the one-process run (bench/distributed.ts). `--help` on either.
 */
import { spawnSync } from 'node:child_process';
import { isUserError, mallocTuned, withMallocTuning } from '@alexnet-mp/coordinator';

// glibc reads its malloc settings at start-up: run again with those the training processes get (launch),
// so that the numbers are the ones a run sees; ALEXNET_MALLOC_TUNING=0 measures glibc's defaults
if (!mallocTuned()) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: withMallocTuning(process.env) });
  process.exit(r.status ?? 1);
}

try {
  const i = process.argv.indexOf('--distributed');
  if (i >= 0) {
    process.argv.splice(i, 1);
    await import('./distributed.js');
  } else {
    await import('./train-step.js');
  }
} catch (e) {
  // errors that say what to change (no GPU, a batch too large for webgpu, a kernel that fell back): one line, no stack
  if (isUserError(e)) {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
