/** run-summary.ts and `alexnet summary`: a run folder's sessions and per-epoch table from its metrics.jsonl. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alexnetBin } from '../src/launch.js';
import { fileLines, formatRunReport, readRunEvents, summariseRun } from '../src/run-summary.js';

const run = (start: number, id: string, preset = 'cifar') => ({ event: 'run', run_id: id, preset, steps: 12, start_step: start, epochs: 3, steps_per_epoch: 4, batch: 8, data: 'synthetic', started: `2026-01-0${start ? 2 : 1}T00:00:00.000Z`, workers: [{ backend: 'webasm' }, { backend: 'webasm' }] });
// `acc`: the batch's top-1 accuracy, written as step lines do (top1_error); `oldStep` as logs before 2026-12-04 did (top1, the accuracy)
const step = (s: number, loss: number, acc: number, lr = 0.01) => ({ event: 'step', step: s, lr, loss, top1_error: 1 - acc, top5_error: 0, ms: 500 });
const oldStep = (s: number, loss: number, acc: number, lr = 0.01) => ({ event: 'step', step: s, lr, loss, top1: acc, top5: 1, ms: 500 });
const ev = (s: number, top1: number, top5: number) => ({ event: 'eval', step: s, loss: 1, top1_error: top1, top5_error: top5, images: 16, ms: 250 });

// session 1: steps 0-5 (the epoch-end evaluation at 4), killed; session 2 resumed from the checkpoint at step 4: steps 4-8 again and on, stopped by SIGINT
const events = [
  run(0, 'a'),
  ...[0, 1, 2, 3].map((s) => step(s, 2 - s * 0.1, 0.25)),
  ev(4, 0.8, 0.3),
  step(4, 9, 0),
  step(5, 9, 0),
  run(4, 'b'),
  step(4, 1.5, 0.5),
  step(5, 1.5, 0.5),
  step(6, 1.3, 0.75),
  step(7, 1.3, 0.75, 0.001),
  ev(8, 0.6, 0.2),
  step(8, 1.0, 1),
  { event: 'stopped', reason: 'SIGINT', step: 9, checkpoint: 'x' },
  { event: 'done', steps: 5, elapsed_s: 7.5 },
];

test('sessions, the steps done, and one row per epoch: after a resume, only the resumed run\'s steps from its checkpoint on count', (t) => {
  const r = summariseRun(events as never);
  t.is(r.stepsDone, 9);
  t.is(r.plannedSteps, 12);
  t.deepEqual(
    r.sessions.map((s) => [s.runId, s.fromStep, s.toStep, s.seconds, s.end]),
    [
      ['a', 0, 6, (6 * 500 + 250) / 1000, 'killed; steps 4-5 done again'],
      ['b', 4, 9, 7.5, 'stopped: SIGINT'],
    ],
  );
  t.is(r.seconds, 3.25 + 7.5);
  t.deepEqual(r.rows.map((x) => [x.from, x.to, x.epoch, x.lr]), [[0, 4, 0, 0.01], [4, 8, 1, 0.001], [8, 9, 2, 0.01]]);
  // the rate changed within epoch 1 (its last step at 0.001): the row says both
  t.deepEqual(r.rows.map((x) => x.lrFrom), [undefined, 0.01, undefined]);
  t.regex(formatRunReport(r), /^\| 4-7 \| 1 \| 0\.01 to 0\.001 \| /m);
  t.is(r.rows[0]!.loss, (2 + 1.9 + 1.8 + 1.7) / 4);
  t.is(r.rows[0]!.top1Error, 0.75);
  // steps 4 and 5 are session b's (loss 1.5), not the abandoned ones (loss 9)
  t.is(r.rows[1]!.loss, (1.5 + 1.5 + 1.3 + 1.3) / 4);
  t.is(r.rows[1]!.top1Error, 1 - (0.5 + 0.5 + 0.75 + 0.75) / 4);
  t.deepEqual(r.rows.map((x) => x.evals.map((v) => v.step)), [[4], [8], []]);
  t.is(r.lastEval!.step, 8);
  const md = formatRunReport(r);
  t.regex(md, /^steps done: 9 of 12 \(2\.25 of 3 epochs\); training wall time 10\.8 s in 2 sessions$/m);
  t.regex(md, /^last evaluation: after step 8, loss 1\.000, top-1 error 60\.0%, top-5 error 20\.0% on 16 held-out images$/m);
  t.regex(md, /^\| 2 \| 2026-01-02T00:00:00\.000Z \| webasm \| 4-8 \| 7\.5 s \| 0\.50 \/ 0\.50 s \| stopped: SIGINT \|$/m);
  t.regex(md, /^\| 0-3 \| 0 \| 0\.01 \| 1\.850 \| 75\.0% \| 1\.000, 80\.0% \/ 30\.0% \(step 4, 16 images\) \|$/m);
  // a model of five classes or fewer (tiny has 4): every label is in the top 5, so no top-5 error is printed
  const four = formatRunReport(summariseRun(events.map((e) => (e.event === 'run' ? { ...e, preset: 'tiny' } : e)) as never));
  t.regex(four, /^last evaluation: after step 8, loss 1\.000, top-1 error 60\.0% on 16 held-out images$/m);
  t.regex(four, /^\| 0-3 \| 0 \| 0\.01 \| 1\.850 \| 75\.0% \| 1\.000, 80\.0% \(step 4, 16 images\) \|$/m);
  t.regex(four, /^\| steps \| epoch \| lr \| mean training loss \| training top-1 error \| held-out loss, top-1 error \|$/m);
  // what is left: 3 steps at the median step time of the 11 steps logged less each session's first, and the epoch-end evaluation at step 12
  t.deepEqual(r.remaining, { steps: 3, stepMs: 500, pacedOn: 9, evaluations: 1, evalMs: 250, seconds: 1.75 });
  t.regex(md, /^remaining: 3 steps at 0\.50 s a step \(median of the last 9\) and 1 evaluation of 0\.3 s: about 1\.8 s$/m);
  const paced = summariseRun([run(0, 'a'), ...[9000, 100, 900, 200, 300].map((ms, s) => ({ ...step(s, 1, 1), ms }))] as never).remaining!;
  t.deepEqual([paced.steps, paced.stepMs, paced.evaluations, paced.evalMs, paced.seconds], [7, 250, 2, 0, 1.75], "the median, not the mean, without the session's first step (its kernels compiled); the evaluations at steps 8 and 12, not yet timed");
  // the run line says its evaluation: epoch ends (every 4), every N steps and the last step, or none
  const fourDone = [...[0, 1, 2, 3].map((s) => step(s, 1, 1))];
  t.is(summariseRun([{ ...run(0, 'a'), eval: { every: 5 } }, ...fourDone] as never).remaining!.evaluations, 4, 'after steps 5, 8, 10 and 12');
  t.is(summariseRun([{ ...run(0, 'a'), eval: { every: 0 }, steps: 10 }, ...fourDone] as never).remaining!.evaluations, 2, 'after steps 8 and 10 (the last)');
  t.is(summariseRun([{ ...run(0, 'a'), eval: null }, ...fourDone] as never).remaining!.evaluations, 0, 'a run without evaluation');
  t.is(summariseRun([run(0, 'a'), ...Array.from({ length: 12 }, (_, s) => step(s, 1, 1))] as never).remaining, null, 'all planned steps done');
  // only a session's first step logged (its time mostly start-up): the steps left, no estimate
  const firstOnly = summariseRun([run(0, 'a'), { ...step(0, 1, 1), ms: 3350 }] as never);
  t.like(firstOnly.remaining, { steps: 11, stepMs: null, pacedOn: 0, seconds: null });
  t.regex(formatRunReport(firstOnly), /^remaining: 11 steps and 3 evaluations \(not yet timed\); no estimate yet \(the steps logged are each session's first, whose time is mostly start-up\)$/m);
  // a session resumed from an earlier checkpoint than its predecessor reached: the steps after it do not count
  const cut = summariseRun([run(0, 'a'), ...[0, 1, 2, 3, 4, 5].map((s) => step(s, 2, 0.5)), ev(4, 0.5, 0.1), run(2, 'b'), step(2, 1, 1)] as never);
  t.is(cut.stepsDone, 3);
  t.deepEqual(cut.rows.map((x) => [x.from, x.to, x.loss]), [[0, 3, (2 + 2 + 1) / 3]]);
  t.is(cut.lastEval, null);
  // a restart after a lost worker goes back to the checkpoint the same way
  const restarted = summariseRun([run(0, 'a'), ...[0, 1, 2, 3].map((s) => step(s, 2, 0.5)), { event: 'restart', from_step: 2 }, step(2, 1, 1), { event: 'failed', error: 'x' }] as never);
  t.is(restarted.stepsDone, 3);
  t.is(restarted.sessions[0]!.end, 'failed');
  // a run that failed after its last checkpoint goes on from that checkpoint: the steps after it are still to do
  const failedLate = summariseRun([run(0, 'a'), ...[0, 1, 2, 3, 4, 5, 6].map((s) => step(s, 2, 0.5)), { event: 'checkpoint', step: 4, file: 'x' }, { event: 'failed', error: 'x' }] as never);
  t.is(failedLate.stepsDone, 7);
  t.is(failedLate.remaining!.steps, 12 - 4);
  t.regex(formatRunReport(failedLate), /^steps done: 7 \(4 kept in the last checkpoint\) of 12 \(1\.75 of 3 epochs\);/m);
  t.regex(formatRunReport(failedLate), /^remaining: 8 steps /m);
  // resumed from an earlier checkpoint (the later one set aside), then failed: it goes on from the one it resumed from
  const setAside = summariseRun([run(0, 'a'), ...[0, 1, 2, 3, 4, 5, 6].map((s) => step(s, 2, 0.5)), { event: 'checkpoint', step: 2, file: 'x' }, { event: 'checkpoint', step: 6, file: 'y' }, { event: 'stopped', reason: 'SIGINT', step: 7, checkpoint: 'z' }, run(2, 'b'), step(2, 1, 1), step(3, 1, 1), { event: 'failed', error: 'x' }] as never);
  t.is(setAside.stepsDone, 4);
  t.is(setAside.remaining!.steps, 12 - 2);
  t.is(setAside.sessions[0]!.end.startsWith('stopped: SIGINT'), true);
  t.regex(formatRunReport(setAside), /^steps done: 4 \(2 kept in the last checkpoint\) of 12 /m);
  // one still running goes on from where it is
  const running = summariseRun([run(0, 'a'), ...[0, 1, 2, 3, 4, 5, 6].map((s) => step(s, 2, 0.5)), { event: 'checkpoint', step: 4, file: 'x' }] as never);
  t.is(running.remaining!.steps, 12 - 7);
  t.regex(formatRunReport(running), /^steps done: 7 of 12 /m);
  // a session's pace: the medians of its first and last 50 steps (a slowdown shows; fewer steps: the same ones)
  const slowing = summariseRun([run(0, 'a'), ...Array.from({ length: 120 }, (_, s) => ({ ...step(s, 1, 1), ms: s < 50 ? 3000 + s : s < 70 ? 9000 : 4000 + s }))] as never);
  t.deepEqual(slowing.sessions[0]!.pace, { firstMs: 3024.5, lastMs: 4094.5 });
  t.regex(formatRunReport(slowing), /\| 0-119 \| 8\.9 min \| 3\.02 \/ 4\.09 s \| running or killed \|$/m);
  // a run continued on another machine's backend: the wall time of each
  const gpu = { ...run(6, 'g'), workers: [{ backend: 'webgpu' }, { backend: 'webgpu' }] };
  const moved = summariseRun([...events.slice(0, -2), { event: 'stopped', reason: 'SIGINT', step: 6, checkpoint: 'x' }, { event: 'done', steps: 2, elapsed_s: 4 }, gpu, step(6, 1, 1), step(7, 1, 1), { event: 'done', steps: 2, elapsed_s: 0.5 }] as never);
  t.deepEqual(moved.sessions.map((s) => s.backend), ['webasm', 'webasm', 'webgpu']);
  t.regex(formatRunReport(moved), /^steps done: 8 of 12 \(2\.00 of 3 epochs\); training wall time 7\.8 s in 3 sessions \(webasm: 7\.3 s in 2 sessions, webgpu: 0\.5 s in 1 session\)$/m);
  t.deepEqual(summariseRun([run(0, 'a'), step(0, 1, 1), { ...step(1, 1, 1), ms: 700 }] as never).sessions[0]!.pace, { firstMs: 600, lastMs: 600 });
  t.is(summariseRun([run(0, 'a')] as never).sessions[0]!.pace, null);
  // rows of another width
  t.deepEqual(summariseRun(events as never, 3).rows.map((x) => [x.from, x.to]), [[0, 3], [3, 6], [6, 9]]);
});

test('alexnet summary prints the report of a run folder; a missing folder, or one without metrics, is one line', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-summary-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  t.is(readRunEvents(dir).length, events.length);
  // a torn last line (a run killed mid-line, or still writing) is left out
  fs.appendFileSync(path.join(dir, 'metrics.jsonl'), '{"event":"step","st');
  t.is(readRunEvents(dir).length, events.length);
  const ok = spawnSync(process.execPath, [alexnetBin, 'summary', dir], { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
  // the folder has none of the checkpoints its log names: said beside the last one
  t.is(ok.stdout, formatRunReport({ ...summariseRun(events as never), latestKept: null }));
  t.regex(ok.stdout, /^last checkpoint: step 9 \(no longer in the folder: no checkpoint is kept/m);
  const json = spawnSync(process.execPath, [alexnetBin, 'summary', dir, '--json'], { encoding: 'utf8' });
  t.like(JSON.parse(json.stdout), { stepsDone: 9, lastCheckpoint: 9, latestKept: null });

  fs.mkdirSync(path.join(dir, 'odd', 'metrics.jsonl'), { recursive: true });
  for (const [where, why] of [
    [path.join(dir, 'nope'), /^alexnet: .*nope: no such run folder$/],
    [os.tmpdir(), /^alexnet: .* has no metrics\.jsonl: not a run folder \(--run-dir of a run\), or its run has not started$/],
    [path.join(dir, 'odd'), /^alexnet: .*odd\/metrics\.jsonl is not a file: a run folder's metrics\.jsonl is the run's log, one JSON line an event$/],
  ] as const) {
    const bad = spawnSync(process.execPath, [alexnetBin, 'summary', where], { encoding: 'utf8' });
    t.is(bad.status, 2);
    t.regex(bad.stderr.trim(), why);
  }
});

test('a run counted in steps says steps, not "0.00 of 0 epochs", even on data with epochs (--steps on CIFAR-10 or an image folder); --epochs capped by --steps says both', (t) => {
  const five = Array.from({ length: 5 }, (_, s) => step(s, 1, 0.5));
  // --steps 5 on data of 3125 steps an epoch: the run line has epochs null and the data's steps_per_epoch
  const onData = formatRunReport(summariseRun([{ ...run(0, 'a'), steps: 5, epochs: null, steps_per_epoch: 3125, eval: null }, ...five] as never));
  t.regex(onData, /^steps done: 5 of 5 steps; training wall time /m);
  t.notRegex(onData, /epochs\)/);
  // synthetic data: no epochs at all
  const synthetic = formatRunReport(summariseRun([{ ...run(0, 'a'), steps: 5, epochs: null, steps_per_epoch: null, eval: null }, ...five] as never));
  t.regex(synthetic, /^steps done: 5 of 5 steps; training wall time /m);
  // a run counted in epochs still says them
  t.regex(formatRunReport(summariseRun([run(0, 'a'), ...five] as never)), /^steps done: 5 of 12 \(1\.25 of 3 epochs\);/m);
  // --epochs 20 capped by --steps 5 on data of 3125 steps an epoch: both said, the fraction readable
  const capped = formatRunReport(summariseRun([{ ...run(0, 'a'), steps: 5, epochs: 20, steps_per_epoch: 3125, eval: null }, ...five] as never));
  t.regex(capped, /^steps done: 5 of 5 \(0\.0016 epochs; --steps 5 caps the 20 asked for\); training wall time /m);
  t.notRegex(capped, /of 0 epochs/);
});

test('step lines say the training top-1 error (top1_error); an old log\'s step lines, with top1 the accuracy, read the same', (t) => {
  const lines = (mk: (s: number, loss: number, acc: number) => object) => [run(0, 'a'), ...[0, 1, 2, 3].map((s) => mk(s, 1, s < 2 ? 0.25 : 0.75))];
  const now = summariseRun(lines(step) as never);
  const old = summariseRun(lines(oldStep) as never);
  t.is(now.rows[0]!.top1Error, 0.5);
  t.is(old.rows[0]!.top1Error, 0.5);
  t.is(formatRunReport(now), formatRunReport(old));
  t.regex(formatRunReport(old), /^\| 0-3 \| 0 \| 0\.01 \| 1\.000 \| 50\.0% \|/m);
});

test('the sessions table shows each worker\'s resident memory over its first and last 50 steps, where the step lines carry it', (t) => {
  // 120 steps: tower 0 at 2000 MiB for the first 60, then 2100; tower 1 flat at 1900; a session of an older build has none
  const withMemory = Array.from({ length: 120 }, (_, s) => ({ ...step(s, 1, 0.5), workers: [{ tower: 0, rss_mib: s < 60 ? 2000 : 2100 }, { tower: 1, rss_mib: 1900 }] }));
  const r = summariseRun([{ ...run(0, 'a'), steps: 200, epochs: null, steps_per_epoch: null }, ...withMemory, { ...run(120, 'b'), steps: 200, epochs: null, steps_per_epoch: null }, step(120, 1, 0.5)] as never);
  t.deepEqual(r.sessions[0]!.memory, [
    { tower: 0, firstMiB: 2000, lastMiB: 2100 },
    { tower: 1, firstMiB: 1900, lastMiB: 1900 },
  ]);
  t.is(r.sessions[1]!.memory, null);
  const md = formatRunReport(r);
  t.regex(md, /\| worker memory, first \/ last 50 steps \| ended \|$/m);
  t.regex(md, /^\| 1 \| .* \| tower 0 2000 \/ 2100 MiB, tower 1 1900 \/ 1900 MiB \| killed \|$/m);
  t.regex(md, /^\| 2 \| .* \|  \| running or killed \|$/m);
  // logs without it keep the table as it was
  t.notRegex(formatRunReport(summariseRun(events as never)), /worker memory/);
});

test('a log is read line by line in chunks: lines and multi-byte characters cut at a chunk boundary come out whole', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-lines-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'metrics.jsonl');
  const lines = ['{"event":"run","data":"Ωmega"}', '', '{"event":"step","step":0,"note":"日本語のテキスト"}', '{"event":"eval","step":1}', 'last line, no newline: ünïcödé'];
  fs.writeFileSync(file, lines.join('\n'));
  for (const chunk of [1, 2, 3, 5, 7, 64, 1 << 20]) t.deepEqual([...fileLines(file, chunk)], lines, `chunks of ${chunk} bytes`);
  // a torn last line is left out; a bad line before others is an error naming it
  const [r, s] = [JSON.stringify(run(0, 'a')), JSON.stringify(step(0, 1, 0.5))];
  fs.writeFileSync(file, `${r}\n${s}\n{"event":"st`);
  t.deepEqual(readRunEvents(dir).map((e) => e.event), ['run', 'step']);
  fs.writeFileSync(file, `${r}\nnot json\n${s}\n`);
  t.throws(() => readRunEvents(dir), { message: `${file}, line 2: not JSON` });
});

test('lines that are JSON but no event the readers can use are left out, said in one line; the report is made of the rest', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-bad-events-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'metrics.jsonl');
  const lines = [run(0, 'a'), step(0, 1.5, 0.5), null, { event: 'step' }, { event: 'eval', step: 3 }, [1, 2], { no: 'event' }, step(1, 1.2, 0.5), { event: 'step', step: 2, loss: 'high' }, { event: 'note', anything: true }, { ...ev(2, 0.5, 0.1), loss: null }];
  fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const said: string[] = [];
  const events = readRunEvents(dir, (l) => said.push(l));
  t.deepEqual(events.map((e) => e.event), ['run', 'step', 'step', 'note', 'eval']);
  t.deepEqual(said, [`6 lines of ${file} left out (line 3: not a JSON object; line 4: a step line whose step is not a step number; line 5: an eval line whose top1_error is not a number; 3 more)`]);
  const report = formatRunReport(summariseRun(events));
  t.regex(report, /preset cifar, batch 8/);
  t.notRegex(report, /undefined|NaN/);
  // an evaluation whose loss overflowed (logged as null) keeps its errors
  t.regex(report, /^last evaluation: after step 2, loss not finite, top-1 error 50\.0%/m);
  // a run line another tool wrote without the usual fields reads as not said, not as "undefined"
  t.regex(formatRunReport(summariseRun([{ event: 'run', start_step: 0 }, step(0, 1, 0.5)] as never)), /^preset not said, batch not said; data not said$/m);
});

test('the last checkpoint and the restarts: steps logged after the checkpoint are said to be done again by --resume', (t) => {
  const events = [run(0, 'a'), ...[0, 1, 2, 3, 4, 5].map((s) => step(s, 1, 0.5)), { event: 'checkpoint', step: 4, file: 'x' }, { event: 'restart', restart: 1, from_step: 4 }, ...[4, 5, 6].map((s) => step(s, 1, 0.5))];
  const r = summariseRun(events as never);
  t.is(r.lastCheckpoint, 4);
  t.is(r.restarts, 1);
  t.regex(formatRunReport(r), /^last checkpoint: step 4 \(steps 4-6 were logged after it: --resume does them again\); 1 restart after a lost worker$/m);
  const clean = summariseRun([run(0, 'b'), ...[0, 1].map((s) => step(s, 1, 0.5)), { event: 'checkpoint', step: 2, file: 'y' }] as never);
  t.regex(formatRunReport(clean), /^last checkpoint: step 2$/m);
  // the folder looked at (summary RUN_DIR): checkpoints taken out since (a finished run keeps its exported model)
  t.regex(formatRunReport({ ...clean, latestKept: 2 }), /^last checkpoint: step 2$/m);
  // a later one in the folder than the log names (its line lost with a killed process): nothing is gone
  t.regex(formatRunReport({ ...r, latestKept: 6 }), /^last checkpoint: step 4 \(steps 4-6 were logged after it: --resume does them again\); 1 restart after a lost worker$/m);
  t.regex(formatRunReport({ ...clean, latestKept: null }), /^last checkpoint: step 2 \(no longer in the folder: no checkpoint is kept, --resume has nothing to continue from\)$/m);
  t.regex(formatRunReport({ ...r, latestKept: 2 }), /^last checkpoint: step 4 \(no longer in the folder: the latest kept is step 2, which --resume continues from\); 1 restart after a lost worker$/m);
  // none written (a run stopped twice at once, or killed, before its first): nothing is kept, and the report says so
  const none = formatRunReport(summariseRun([run(0, 'c'), step(0, 1, 0.5), step(1, 1, 0.5)] as never));
  t.regex(none, /^no checkpoint: nothing of the 2 steps logged is kept \(--resume has nothing to continue from: start the run again\)$/m);
  t.notRegex(none, /restart/);
  // a log with the stop's checkpoint on its stopped line only
  const stopped = summariseRun([run(0, 'd'), ...[0, 1, 2].map((s) => step(s, 1, 0.5)), { event: 'stopped', reason: 'SIGINT', step: 3, checkpoint: 'z' }] as never);
  t.is(stopped.lastCheckpoint, 3);
  // a run begun in this folder from another's checkpoint (--resume Y --run-dir X): that checkpoint still continues it
  t.notRegex(formatRunReport(summariseRun([run(4, 'e'), step(4, 1, 0.5), step(5, 1, 0.5)] as never)), /nothing of the|no checkpoint/);
});

test("the last layer-norms reading: each layer's update/weight ratio over both towers, after its step", (t) => {
  const norms = [
    { tower: 0, layer: 'conv1', weight: 3, update: 0.003, bias: 0 },
    { tower: 1, layer: 'conv1', weight: 4, update: 0.004, bias: 0 },
    { tower: 0, layer: 'fc8', weight: 2, update: 0.02, bias: 0 },
  ];
  const lines = [run(0, 'a'), step(0, 1, 0.5), { ...step(1, 1, 0.5), layer_norms: norms.map((n) => ({ ...n, update: n.update * 2 })) }, { ...step(3, 1, 0.5), layer_norms: norms }, step(4, 1, 0.5)];
  const r = summariseRun(lines as never);
  t.deepEqual(r.norms?.step, 4);
  t.regex(formatRunReport(r), /^update \/ weight after step 4: conv1 1\.0e-3, fc8 1\.0e-2$/m);
  t.is(summariseRun([run(0, 'a'), step(0, 1, 0.5)] as never).norms, null);
});

test('a session that ended and was then resumed from an earlier checkpoint says which of its steps the next one did again', (t) => {
  const events = [
    run(0, 'a'),
    ...[0, 1, 2, 3, 4, 5].map((s) => step(s, 1, 0.5)),
    { event: 'done', steps: 6, elapsed_s: 3 },
    run(3, 'b'),
    ...[3, 4, 5, 6].map((s) => step(s, 1, 0.5)),
    { event: 'done', steps: 4, elapsed_s: 2 },
  ];
  const r = summariseRun(events as never);
  t.deepEqual(r.sessions.map((s) => s.end), ['done; steps 3-5 done again (the next session resumed from step 3)', 'done']);
});

