/**
 * `worker --trace-crossings FILE` (packages/worker/src/crossing-trace.ts): two traced workers write one line a step
 * with when each tensor was sent and the peer's arrived and the waits, on one clock; crossingWaits splits each
 * wait at the peer's send. A file that cannot be written is refused before the worker starts.
 */
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tiny, type SgdHyper } from '@alexnet-mp/core';
import { crossingWaits, readCrossingTrace, type StepTrace } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';
import { alexnet, startWorker, tempDir } from './helpers.js';

const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

const step = (n: number, tower: number, o: Partial<StepTrace>): StepTrace => ({ run: 'r…', runKey: '0000abcd', step: n, tower, begin: 0, end: 10, sent: {}, arrived: {}, waited: [], gc: [], ...o });

test("crossingWaits splits each wait at the peer's send, counts the peer's garbage collection in it, and skips the warm-up", (t) => {
  const warm = [step(0, 0, { end: 100, waited: [['pool2/FORWARD/0', 0, 90]] }), step(0, 1, { end: 100, gc: [[20, 21]] })];
  // step 1: tower 0 waits 2..6 for pool2; tower 1 sent it at 3 and was in its garbage collector 1..4 (a pause
  // reported in its next line); then 7..8 for the acknowledgements. Tower 1 waits 5..6 for tower 0's pool2, sent
  // at 1 (before the wait), and 8..8.5 for its own fc7 to leave (it takes nothing there)
  const t0 = step(1, 0, { begin: 0, end: 10, sent: { 'pool2/FORWARD/0': 1 }, arrived: { 'pool2/FORWARD/0': 5.9 }, waited: [['pool2/FORWARD/0', 2, 6], ['acks', 7, 8]] });
  const t1 = step(1, 1, { begin: 0, end: 12, sent: { 'pool2/FORWARD/0': 3, 'fc7/FORWARD/0': 8 }, arrived: { 'pool2/FORWARD/0': 5.5 }, waited: [['pool2/FORWARD/0', 5, 6], ['fc7/FORWARD/0', 8, 8.5]] });
  const t1next = step(2, 1, { begin: 12, end: 20, gc: [[1, 4]] });
  // an earlier run in the same file (its redacted id the same, its key not) is left out
  const earlier = step(1, 0, { runKey: '00001234', waited: [['pool2/FORWARD/0', 0, 1000]] });
  const [w0, w1] = crossingWaits([[earlier, warm[0]!, t0], [warm[1]!, t1, t1next]]);
  t.is(w0!.steps, 1);
  t.is(w0!.medianStepMs, 10);
  t.is(w1!.medianStepMs, 12);
  // tower 1's pause 1..4 lies in step 1 (reported with step 2)
  t.is(w1!.gcMs, 3);
  t.deepEqual(
    w0!.crossings.map((c) => [c.crossing, c.kind]),
    [
      ['pool2 forward', 'takes'],
      ['acks', 'acks'],
    ],
  );
  const pool2 = w0!.crossings[0]!;
  t.deepEqual([pool2.waitedMs, pool2.beforePeerSentMs, pool2.afterPeerSentMs, pool2.peerGcMs], [4, 1, 3, 2]);
  const acks = w0!.crossings[1]!;
  t.deepEqual([acks.waitedMs, acks.beforePeerSentMs, acks.afterPeerSentMs], [1, 0, 0]);
  t.deepEqual([w0!.waitedMs, w0!.beforePeerSentMs, w0!.afterPeerSentMs, w0!.ownSendsMs, w0!.peerGcMs], [5, 1, 3, 1, 2]);
  // the peer's tensor was on its way before the wait began: all of the wait is after the send
  const p1 = w1!.crossings.find((c) => c.crossing === 'pool2 forward')!;
  t.deepEqual([p1.beforePeerSentMs, p1.afterPeerSentMs], [0, 1]);
  // tower 1 takes nothing at fc7 forward: its wait there is for its own tensor
  const fc7 = w1!.crossings.find((c) => c.crossing === 'fc7 forward')!;
  t.deepEqual([fc7.kind, fc7.waitedMs, fc7.beforePeerSentMs + fc7.afterPeerSentMs], ['sends', 0.5, 0]);
  t.deepEqual([w1!.waitedMs, w1!.ownSendsMs], [1.5, 0.5]);
});

test('readCrossingTrace names a line that is not a step of a trace', (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'trace.jsonl');
  fs.writeFileSync(f, `${JSON.stringify(step(0, 0, {}))}\n{"step": "one"}\n`);
  t.throws(() => readCrossingTrace(f), { message: /trace\.jsonl line 2 is not a step of a crossing trace/ });
});

test.serial('two workers with --trace-crossings write each step\'s crossings on one clock: what one sends, the other receives after', async (t) => {
  const dir = tempDir(t);
  const file = (tw: number) => path.join(dir, `tower${tw}.jsonl`);
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--trace-crossings', file(0)]), startWorker(t, 1, ['--trace-crossings', file(1)])]);
  const STEPS = 4;
  for (const microBatches of [1, 2]) {
    const c = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: 4, seed: 5, hyper, source: new SyntheticSource(tiny, 5), microBatches });
    t.teardown(() => c.close());
    await c.start();
    await c.run(STEPS, () => {});
    c.close();
    // the runs follow each other in the files, each line with its run's id
    const files = [readCrossingTrace(file(0)), readCrossingTrace(file(1))] as const;
    for (const tr of files) t.is(new Set(tr.map((s) => s.runKey)).size, microBatches);
    const traces = files.map((tr) => tr.filter((s) => s.runKey === tr.at(-1)!.runKey)) as [StepTrace[], StepTrace[]];
    for (const tr of traces) t.deepEqual(tr.map((s) => s.step), [0, 1, 2, 3]);
    for (const tw of [0, 1] as const) {
      const mine = traces[tw];
      const peer = traces[1 - tw]!;
      for (const [i, s] of mine.entries()) {
        t.is(s.tower, tw);
        t.true(s.begin <= s.end);
        // every tensor this worker took, the peer sent first (one host, one clock), once per micro-batch
        const arrived = Object.keys(s.arrived);
        t.true(arrived.length > 0);
        for (const key of arrived) {
          t.true(peer[i]!.sent[key]! <= s.arrived[key]!, `step ${s.step} ${key}: sent ${peer[i]!.sent[key]} arrived ${s.arrived[key]}`);
          t.is(Number(key.split('/')[2]) < microBatches, true);
        }
        t.is(arrived.filter((k) => k.startsWith('pool2/FORWARD/')).length, microBatches);
        for (const [, from, to] of s.waited) t.true(from <= to && from >= s.begin - 1e-6 && to <= s.end + 1e-6);
      }
    }
    const waits = crossingWaits(traces);
    for (const w of waits) {
      t.is(w.steps, STEPS - 1);
      t.deepEqual(
        // ("sends": with micro-batches, tower 1 waits for its fc7 tensors to leave at the end of the step)
        w.crossings.filter((c) => c.crossing !== 'acks' && c.crossing !== 'sends').map((c) => c.crossing).sort(),
        ['fc6 backward', 'fc6 forward', 'fc7 backward', 'fc7 forward', 'pool2 backward', 'pool2 forward', 'pool5 backward', 'pool5 forward'],
      );
      for (const c of w.crossings) {
        if (c.kind === 'takes') t.true(Math.abs(c.beforePeerSentMs + c.afterPeerSentMs - c.waitedMs) < 1e-9);
        t.true(c.peerGcMs <= c.waitedMs + 1e-9);
      }
      t.true(Math.abs(w.beforePeerSentMs + w.afterPeerSentMs + w.ownSendsMs - w.waitedMs) < 1e-9);
      // fc8 and the loss are on tower 0: tower 1 only sends fc7 forward, tower 0 only sends its gradient back
      t.is(w.crossings.find((c) => c.crossing === (w.tower === 0 ? 'fc7 backward' : 'fc7 forward'))!.kind, 'sends');
    }
  }
});

test('a --trace-crossings file that cannot be written is refused in one line before the worker starts', async (t) => {
  const p = alexnet(['worker', '--tower', '0', '--port', '0', '--trace-crossings', path.join(tempDir(t), 'no-such-folder', 'trace.jsonl')]);
  const { code } = await p.exited;
  t.is(code, 2);
  t.regex(p.output(), /--trace-crossings: cannot write .*no-such-folder.*trace\.jsonl/);
  t.notRegex(p.output(), /at .*\.(ts|js):\d+/);
  t.false(p.output().includes('listening on'));
  // a file of another kind (a run's metrics, a model) given by mistake is not emptied
  const metrics = path.join(tempDir(t), 'metrics.jsonl');
  fs.writeFileSync(metrics, '{"event":"run"}\n');
  const q = alexnet(['worker', '--tower', '0', '--port', '0', '--trace-crossings', metrics]);
  t.is((await q.exited).code, 2);
  t.regex(q.output(), /^alexnet: --trace-crossings \S+metrics\.jsonl exists and is not a crossing trace \(worker --trace-crossings\): it would be replaced\. Give a new file name \(or remove that file first\)$/m);
  t.is(fs.readFileSync(metrics, 'utf8'), '{"event":"run"}\n');
});

test('a worker that cannot start (its port taken) leaves an earlier --trace-crossings file as it was', async (t) => {
  const file = path.join(tempDir(t), 'trace.jsonl');
  const earlier = '{"run":"earlier","step":0}\n';
  fs.writeFileSync(file, earlier);
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const p = alexnet(['worker', '--tower', '0', '--host', '127.0.0.1', '--port', String(port), '--trace-crossings', file]);
  const { code } = await p.exited;
  t.is(code, 2, p.output());
  t.regex(p.output(), /in use/);
  t.is(fs.readFileSync(file, 'utf8'), earlier);
});
