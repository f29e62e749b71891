/** metrics-log.ts: the JSON lines of a run, with a step's per-crossing traffic written only when it changes. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MetricsLog } from '../src/metrics-log.js';

test("a step line carries the per-crossing traffic the first time and when it changes; observers get every event whole", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-metrics-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out: string[] = [];
  const seen: object[] = [];
  const log = new MetricsLog(dir, (l) => out.push(l));
  log.observe((e) => seen.push(e));
  const a = [[{ point: 'pool2', forward_sent_bytes: 8 }]];
  const b = [[{ point: 'pool2', forward_sent_bytes: 16 }]];
  const steps = [
    { event: 'step', step: 0, loss: 2, traffic: a },
    { event: 'step', step: 1, loss: 1.9, traffic: a },
    { event: 'eval', step: 2, loss: 1.8 },
    { event: 'step', step: 2, loss: 1.8, traffic: b },
    { event: 'step', step: 3, loss: 1.7, traffic: b },
  ];
  for (const e of steps) log.write(e);
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; traffic?: unknown });
  t.deepEqual(lines.map((l) => l.traffic ?? null), [a, null, null, b, null]);
  t.deepEqual(lines.map((l) => l.step), [0, 1, 2, 2, 3]);
  t.deepEqual(out.map((l) => JSON.parse(l) as object), lines);
  t.deepEqual(seen, steps, 'observers (the dashboard) get the traffic of every step');
});
