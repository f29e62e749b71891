/** `alexnet coordinator`: drives two workers through a training run and logs metrics as JSON lines. */
import type { CommandModule } from 'yargs';
import { getPreset } from '@alexnet-mp/core';
import { PROTOCOL_VERSION, modelHash } from '@alexnet-mp/worker';
import { Coordinator, WorkerFailure, type StepMetrics } from '../coordinator.js';
import { createSource } from '../batch-source.js';
import { heldOutSet, type EvalMetrics } from '../evaluation.js';
import { MetricsLog, summarise } from '../metrics-log.js';
import { UserError } from './errors.js';
import { checkAddress, checkRunArgs, evalBatchOf, runOptions, type RunArgs } from './options.js';

interface Args extends RunArgs {
  workers: string;
  'run-id'?: string;
  'connect-timeout': number;
  'protocol-version': number;
  'exit-with-stdin': boolean;
}

export const coordinatorCommand: CommandModule<object, Args> = {
  command: 'coordinator',
  describe: 'run training on two workers: handshake, configure, then send every step its batch and log metrics',
  builder: (y) =>
    y
      .usage(
        '$0 coordinator --workers HOST:PORT,HOST:PORT [options]\n\nThe first address is tower 0, the second tower 1. ' +
          'Sends each step its batch (uint8 images and labels) to both workers, which exchange activations and gradients directly; ' +
          'prints one JSON object per line: a "run" event, a "step" event per step, an "eval" event per evaluation (--eval-every), a "done" event.',
      )
      .options({
        workers: { type: 'string', demandOption: true, describe: "the two workers' HOST:PORT, tower 0's first, comma-separated" },
        ...runOptions,
        'run-id': { type: 'string', describe: 'name of the run (default: time and a random suffix)' },
        'connect-timeout': { type: 'number', default: 30, describe: 'seconds to wait for the workers to answer the handshake' },
        'protocol-version': { type: 'number', default: PROTOCOL_VERSION, hidden: true, describe: 'speak as if this protocol version (for testing the refusal)' },
        'exit-with-stdin': { type: 'boolean', default: false, hidden: true, describe: 'exit when stdin closes (used by launch)' },
      }) as never,
  handler: async (a) => {
    const spec = getPreset(a.preset);
    const hyper = checkRunArgs(a);
    const list = a.workers.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (list.length !== 2) throw new UserError(`--workers needs exactly two addresses (tower 0's, then tower 1's), got ${list.length}`);
    const workers = [checkAddress(list[0]!, 'workers'), checkAddress(list[1]!, 'workers')] as const;
    if (workers[0] === workers[1]) throw new UserError(`--workers names ${workers[0]} twice: the two towers need two workers`);
    if (!(a['connect-timeout'] > 0)) throw new UserError('--connect-timeout must be > 0 seconds');
    const info = (line: string) => process.stderr.write(`alexnet coordinator: ${line}\n`);
    const source = createSource(a.data, spec, a.seed);
    const evalSet = a['eval-every'] > 0 ? heldOutSet(a.data, spec, a.seed, evalBatchOf(a), a['eval-batches']) : null;
    const c = new Coordinator({
      spec,
      workers,
      batch: a.batch,
      seed: a.seed,
      hyper,
      source,
      eval: evalSet ? { every: a['eval-every'], set: evalSet } : undefined,
      runId: a['run-id'],
      connectTimeoutMs: a['connect-timeout'] * 1000,
      protocolVersion: a['protocol-version'],
      info,
    });
    const log = new MetricsLog(a['run-dir']);
    const stop = (why: string, code: number) => {
      c.cancel();
      log.write({ event: 'stopped', reason: why });
      c.close();
      process.exit(code);
    };
    process.on('SIGINT', () => stop('SIGINT', 130));
    process.on('SIGTERM', () => stop('SIGTERM', 143));
    if (a['exit-with-stdin']) {
      process.stdin.on('end', () => stop('stdin closed', 1));
      process.stdin.resume();
    }
    try {
      await c.start();
      const runEvent = {
        event: 'run',
        run_id: c.runId,
        protocol_version: c.identity.protocol_version,
        preset: spec.name,
        model_hash: modelHash(spec),
        steps: a.steps,
        batch: a.batch,
        seed: a.seed,
        hyper,
        data: source.description,
        eval: evalSet ? { every: a['eval-every'], data: evalSet.description } : null,
        workers: c.handshakes!.map((h, t) => ({ tower: t, address: workers[t], backend: h.backend, device: h.device, host: h.hostname, pid: h.pid })),
        crossings: c.configured![0].crossings,
        started: new Date().toISOString(),
      };
      log.writeRunFile(runEvent);
      log.write(runEvent);
      const t0 = performance.now();
      const evals: EvalMetrics[] = [];
      const onEval = (m: EvalMetrics) => {
        evals.push(m);
        log.write(m);
        info(`evaluation after step ${m.step}: loss ${m.loss.toFixed(3)}, top-1 error ${(100 * m.top1_error).toFixed(1)}%, top-5 error ${(100 * m.top5_error).toFixed(1)}% (${m.images} held-out images)`);
      };
      const steps: StepMetrics[] = await c.run(a.steps, (m) => log.write(m), { onEval });
      const done = summarise(steps, performance.now() - t0, evals);
      log.write(done);
      if (steps.length > 0) {
        info(
          `done: ${done.steps} steps in ${done.elapsed_s.toFixed(1)} s, ${done.images_per_s.toFixed(1)} images/s (median step ${done.median_step_ms.toFixed(0)} ms), ` +
            `loss ${done.loss_last!.toFixed(3)} and top-1 ${(100 * done.top1_last!).toFixed(0)}% over the last ${Math.min(10, steps.length)} steps, ` +
            `waiting on the exchange ${done.exchange_share.map((x) => `${(100 * x).toFixed(0)}%`).join(' / ')} of the workers' step time`,
        );
      }
    } catch (e) {
      if (e instanceof WorkerFailure) {
        log.write({ event: 'failed', tower: e.tower, error: e.message });
        process.stderr.write(`alexnet coordinator: ${e.message}\n`);
        c.close();
        process.exit(1);
      }
      c.close();
      throw e;
    }
    c.close();
    if (a['exit-with-stdin']) process.stdin.destroy();
  },
};
