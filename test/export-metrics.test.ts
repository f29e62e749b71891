/** `alexnet export-metrics`: a tiny run's metrics.jsonl as a TensorBoard event file (read back record by record) and a CSV. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { execFileSync, spawn } from 'node:child_process';
import { alexnet } from './helpers.js';
import { alexnetBin } from '@alexnet-mp/coordinator';
import { crc32c } from '@alexnet-mp/core';
import { runScalars } from '../packages/coordinator/src/export-metrics.js';

test('crc32c: the check vector', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
});

test('runScalars: old step lines (accuracy top1/top5) read as error; a resumed session replaces later steps', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-export-metrics-old-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lines = [
    { event: 'run', started: '2026-12-04T00:00:00Z' },
    { event: 'step', step: 0, lr: 0.1, loss: 2, top1: 0.25, top5: 0.75, ms: 1000 },
    { event: 'step', step: 1, lr: 0.1, loss: 1.5, top1: 0.5, ms: 1000 },
    { event: 'run', started: '2026-12-04T01:00:00Z' },
    { event: 'step', step: 1, lr: 0.1, loss: 1.25, top1_error: 0.375, top5_error: 0.125, ms: 2000 },
  ];
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const { steps, tags } = runScalars(dir);
  t.deepEqual(tags, ['train/loss', 'train/top1_error', 'train/top5_error', 'train/learning_rate']);
  t.deepEqual(steps.map((s) => [s.step, s.wallTime, Object.fromEntries(s.values)]), [
    [1, Date.parse('2026-12-04T00:00:00Z') / 1000 + 1, { 'train/loss': 2, 'train/top1_error': 0.75, 'train/top5_error': 0.25, 'train/learning_rate': 0.1 }],
    [2, Date.parse('2026-12-04T01:00:00Z') / 1000 + 2, { 'train/loss': 1.25, 'train/top1_error': 0.375, 'train/top5_error': 0.125, 'train/learning_rate': 0.1 }],
  ]);
});

test('runScalars: what a session logged past the checkpoint the next session or a restart went back to is dropped', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-export-metrics-rewind-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const step = (i: number, loss: number) => ({ event: 'step', step: i, lr: 0.1, loss, top1_error: 0.5, top5_error: 0, ms: 1000 });
  const lines = [
    { event: 'run', started: '2026-12-04T00:00:00Z', start_step: 0 },
    ...[0, 1, 2, 3, 4, 5].map((i) => step(i, 10 + i)),
    { event: 'eval', step: 4, loss: 5, top1_error: 0.4, top5_error: 0 },
    { event: 'eval', step: 6, loss: 6, top1_error: 0.4, top5_error: 0 },
    // killed after 6 steps; resumed from the checkpoint after 4, it stops after 5
    { event: 'run', started: '2026-12-04T01:00:00Z', start_step: 4 },
    step(4, 20),
    // a lost worker: back to the checkpoint after 4 steps again
    { event: 'restart', from_step: 4 },
    step(4, 30),
  ];
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const { steps } = runScalars(dir);
  t.deepEqual(steps.map((s) => [s.step, s.values.get('train/loss'), s.values.get('eval/loss')]), [
    [1, 10, undefined],
    [2, 11, undefined],
    [3, 12, undefined],
    [4, 13, 5],
    [5, 30, undefined],
  ]);
});

test('runScalars: a step line with layer_norms gives each layer\'s update/weight ratio and weight norm, both towers together', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-export-metrics-norms-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const norms = [
    { tower: 0, layer: 'conv1', weight: 3, update: 0.003, bias: 0.1 },
    { tower: 1, layer: 'conv1', weight: 4, update: 0.004, bias: 0.1 },
    { tower: 0, layer: 'fc8', weight: 2, update: 0.01, bias: 0 },
  ];
  const lines = [
    { event: 'run', started: '2026-12-04T00:00:00Z' },
    { event: 'step', step: 0, lr: 0.1, loss: 2, top1_error: 0.5, top5_error: 0, ms: 1000 },
    { event: 'step', step: 1, lr: 0.1, loss: 1.5, top1_error: 0.5, top5_error: 0, ms: 1000, layer_norms: norms },
  ];
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const { steps, tags } = runScalars(dir);
  t.deepEqual(tags.slice(-4), ['norms/conv1/update_ratio', 'norms/conv1/weight', 'norms/fc8/update_ratio', 'norms/fc8/weight']);
  t.false(steps[0]!.values.has('norms/conv1/weight'));
  const v = steps[1]!.values;
  // conv1 over both towers: |w| = sqrt(9 + 16) = 5, |dw| = sqrt(9 + 16) 1e-3 = 0.005
  t.true(Math.abs(v.get('norms/conv1/weight')! - 5) < 1e-12);
  t.true(Math.abs(v.get('norms/conv1/update_ratio')! - 0.001) < 1e-12);
  t.is(v.get('norms/fc8/update_ratio'), 0.005);
});

// The event schema, decoded with protobufjs: a second implementation next to the hand-written encoder.
const root = protobuf.Root.fromJSON({
  nested: {
    Event: { fields: { wall_time: { type: 'double', id: 1 }, step: { type: 'int64', id: 2 }, file_version: { type: 'string', id: 3 }, summary: { type: 'Summary', id: 5 } } },
    Summary: {
      fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
      nested: { Value: { fields: { tag: { type: 'string', id: 1 }, simple_value: { type: 'float', id: 2 } } } },
    },
  },
});
const EventType = root.lookupType('Event');
interface DecodedEvent {
  wall_time: number;
  step?: number;
  file_version?: string;
  summary?: { value: { tag: string; simple_value: number }[] };
}

const masked = (b: Uint8Array) => {
  const crc = crc32c(b);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
};

/** The records of a TFRecord file, each CRC checked. */
function readRecords(t: { is: (a: unknown, b: unknown, m?: string) => void }, buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = Number(buf.readBigUInt64LE(at));
    t.is(buf.readUInt32LE(at + 8), masked(buf.subarray(at, at + 8)), `length CRC of record ${out.length}`);
    const data = buf.subarray(at + 12, at + 12 + len);
    t.is(buf.readUInt32LE(at + 12 + len), masked(data), `data CRC of record ${out.length}`);
    out.push(data);
    at += 12 + len + 4;
  }
  t.is(at, buf.length, 'the file ends at a record boundary');
  return out;
}

const f32 = (x: number) => Math.fround(x);

test('export-metrics: a tiny run as a TensorBoard event file and a CSV', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-export-metrics-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const runDir = path.join(dir, 'run');
  const launch = alexnet(['launch', '--steps', '5', '--eval-every', '2', '--run-dir', runDir]);
  const { code } = await launch.exited;
  t.is(code, 0, launch.output());

  const lines = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  // numbered by the steps done: a step line's index + 1, an evaluation's own (the steps before it)
  const steps = new Map(lines.filter((e) => e.event === 'step').map((e) => [(e.step as number) + 1, e]));
  const evals = new Map(lines.filter((e) => e.event === 'eval').map((e) => [e.step as number, e]));
  t.is(steps.size, 5);
  t.true(evals.size >= 2);

  const tb = path.join(dir, 'tb');
  const csv = path.join(dir, 'out.csv');
  const ex = alexnet(['export-metrics', runDir, '--tensorboard', tb, '--csv', csv]);
  t.is((await ex.exited).code, 0, ex.output());

  // the event file
  const files = fs.readdirSync(tb);
  t.is(files.length, 1);
  t.regex(files[0]!, new RegExp(`^events\\.out\\.tfevents\\.\\d+\\.${os.hostname().replace(/[.]/g, '\\.')}$`));
  const records = readRecords(t, fs.readFileSync(path.join(tb, files[0]!)));
  const events = records.map((r) => EventType.toObject(EventType.decode(r), { longs: Number }) as DecodedEvent);
  t.is(events[0]!.file_version, 'brain.Event:2');
  const allSteps = [...new Set([...steps.keys(), ...evals.keys()])].sort((a, b) => a - b);
  t.deepEqual(events.slice(1).map((e) => e.step ?? 0), allSteps);
  let lastWall = 0;
  for (const e of events.slice(1)) {
    t.true(e.wall_time >= lastWall && e.wall_time > 1.7e9, 'wall times are seconds since 1970, in order');
    lastWall = e.wall_time;
    const got = new Map(e.summary!.value.map((v) => [v.tag, v.simple_value]));
    const want = new Map<string, number>();
    const s = steps.get(e.step ?? 0);
    if (s) {
      want.set('train/loss', s.loss).set('train/top1_error', s.top1_error ?? 1 - s.top1).set('train/top5_error', s.top5_error ?? 1 - s.top5);
      want.set('train/learning_rate', s.lr).set('train/images_per_s', s.images_per_s);
      for (const w of s.workers) {
        want.set(`train/exchange_share/tower${w.tower}`, w.exchange_ms / w.total_ms);
        if (w.exchange_hidden_ms !== undefined) want.set(`train/exchange_hidden_share/tower${w.tower}`, w.exchange_hidden_ms / w.total_ms);
      }
    }
    const v = evals.get(e.step ?? 0);
    if (v) want.set('eval/loss', v.loss).set('eval/top1_error', v.top1_error).set('eval/top5_error', v.top5_error);
    t.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `tags at step ${e.step}`);
    for (const [tag, x] of want) t.is(got.get(tag), f32(x), `${tag} at step ${e.step}`);
  }
  t.true(events.slice(1).some((e) => e.summary!.value.some((v) => v.tag === 'train/exchange_share/tower1')));
  t.true(events.slice(1).some((e) => e.summary!.value.some((v) => v.tag === 'train/exchange_hidden_share/tower1')), "this build's workers report the hidden exchange");

  // the CSV
  const rows = fs.readFileSync(csv, 'utf8').trim().split('\n').map((l) => l.split(','));
  const header = rows[0]!;
  t.deepEqual(header.slice(0, 2), ['step', 'wall_time']);
  for (const tag of ['train/loss', 'train/top1_error', 'train/top5_error', 'train/learning_rate', 'train/images_per_s', 'train/exchange_share/tower0', 'train/exchange_share/tower1', 'eval/loss', 'eval/top1_error', 'eval/top5_error']) t.true(header.includes(tag), tag);
  t.deepEqual(rows.slice(1).map((r) => Number(r[0])), allSteps);
  const col = (r: string[], tag: string) => r[header.indexOf(tag)]!;
  for (const r of rows.slice(1)) {
    t.is(r.length, header.length);
    const s = steps.get(Number(r[0]));
    const v = evals.get(Number(r[0]));
    t.is(col(r, 'train/loss'), s ? String(s.loss) : '');
    t.is(col(r, 'train/learning_rate'), s ? String(s.lr) : '');
    t.is(col(r, 'eval/top1_error'), v ? String(v.top1_error) : '');
    t.is(col(r, 'eval/loss'), v ? String(v.loss) : '');
  }
});

test('export-metrics: errors are one line and exit 2', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-export-metrics-err-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = async (args: string[]) => {
    const p = alexnet(['export-metrics', ...args]);
    const { code } = await p.exited;
    return { code, err: p.stderr };
  };
  let r = await run([path.join(dir, 'missing'), '--csv', path.join(dir, 'a.csv')]);
  t.is(r.code, 2);
  t.deepEqual(r.err.length, 1);
  t.regex(r.err[0]!, /no such run folder/);
  r = await run([dir, '--csv', path.join(dir, 'a.csv')]);
  t.is(r.code, 2);
  t.regex(r.err.join('\n'), /^alexnet: .*no metrics\.jsonl/);
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), JSON.stringify({ event: 'run', started: '2026-12-04T00:00:00Z' }) + '\n' + JSON.stringify({ event: 'step', step: 0, loss: 1, ms: 10 }) + '\n');
  fs.writeFileSync(path.join(dir, 'file'), '');
  for (const [out, want] of [
    [['--csv', path.join(dir, 'file', 'a.csv')], /^alexnet: --csv \S+a\.csv: \S+file is not a folder$/],
    [['--tensorboard', path.join(dir, 'file', 'tb')], /^alexnet: cannot make/],
    // a name ending in a separator is a folder's, there or not
    [['--csv', `${dir}${path.sep}`], /^alexnet: --csv \S+ is a folder: give a file name, e\.g\. \S+metrics\.csv$/],
    [['--csv', path.join(dir, 'nodir') + path.sep], /^alexnet: --csv \S+nodir\/ names a folder \(it ends with \/\), which does not exist: give a file name, e\.g\. metrics\.csv$/],
  ] as [string[], RegExp][]) {
    r = await run([dir, ...out]);
    t.is(r.code, 2, out.join(' '));
    t.is(r.err.length, 1);
    t.regex(r.err[0]!, want);
  }
  // the run's own metrics.jsonl is not written over with the CSV
  r = await run([dir, '--csv', path.join(dir, 'metrics.jsonl')]);
  t.is(r.code, 2);
  t.regex(r.err.join('\n'), /^alexnet: --csv \S+metrics\.jsonl is the metrics\.jsonl of the run in \S+: write it elsewhere, e\.g\. --csv metrics\.csv$/);
  t.regex(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'), /"event":"run"/);
  r = await run([dir]);
  t.is(r.code, 2);
  t.regex(r.err.join('\n'), /--tensorboard DIR or --csv FILE/);
  // an existing file of another kind (a model, an image reached through a link) is refused, left as it was; a CSV
  // of metrics written before is replaced
  const image = path.join(dir, 'photo.jpg');
  fs.writeFileSync(image, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]));
  fs.symlinkSync(image, path.join(dir, 'link.csv'));
  fs.writeFileSync(path.join(dir, 'm.safetensors'), Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]));
  for (const name of ['link.csv', 'm.safetensors']) {
    r = await run([dir, '--csv', path.join(dir, name)]);
    t.is(r.code, 2, name);
    t.deepEqual(r.err, [`alexnet: --csv ${path.join(dir, name)} exists and is not a CSV of a run's metrics (export-metrics --csv): it would be replaced. Give a new file name (or remove that file first)`]);
  }
  t.is(fs.readFileSync(image).length, 10, 'the image behind the link is untouched');
  t.true(fs.lstatSync(path.join(dir, 'link.csv')).isSymbolicLink());
  fs.writeFileSync(path.join(dir, 'again.csv'), 'step,wall_time,an earlier export\n');
  t.is((await run([dir, '--csv', path.join(dir, 'again.csv')])).code, 0, 'its own CSV is replaced');
  t.regex(fs.readFileSync(path.join(dir, 'again.csv'), 'utf8'), /^step,wall_time,train\/loss/);
  // a run that logged no step yet: the CSV is written (its header) and that is said
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), JSON.stringify({ event: 'run', started: '2026-12-04T00:00:00Z' }) + '\n' + JSON.stringify({ event: 'stopped', reason: 'SIGINT' }) + '\n');
  r = await run([dir, '--csv', path.join(dir, 'empty.csv')]);
  t.is(r.code, 0);
  t.deepEqual(r.err, [`alexnet export-metrics: warning: ${dir} has logged no training step yet: the CSV is its header alone`]);
  t.is(fs.readFileSync(path.join(dir, 'empty.csv'), 'utf8').trim().split('\n').length, 1);
});

test('--csv /dev/stdout: the CSV alone on stdout (the row count on stderr); a reader that stops early ends the command quietly, status 141', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-export-metrics-stdout-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lines = [JSON.stringify({ event: 'run', started: '2026-12-04T00:00:00Z', start_step: 0 })];
  // enough rows that the CSV outlasts a pipe's buffer: the reader is gone while it is written
  for (let i = 0; i < 20_000; i++) lines.push(JSON.stringify({ event: 'step', step: i, lr: 0.1, loss: 1 + i, top1_error: 0.5, top5_error: 0, ms: 10 }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  const whole = alexnet(['export-metrics', dir, '--csv', '/dev/stdout']);
  t.is((await whole.exited).code, 0, whole.output());
  t.is(whole.stdout.length, 20_001, 'a header and a row per step, nothing else');
  t.true(whole.stdout.every((l) => /^(step|\d+),/.test(l)));
  t.deepEqual(whole.stderr, ['wrote 20000 rows to /dev/stdout']);
  // with an event file too: still the CSV alone on stdout, both lines of what was written on stderr
  const tb = path.join(dir, 'tb');
  const both = alexnet(['export-metrics', dir, '--tensorboard', tb, '--csv', '/dev/stdout']);
  t.is((await both.exited).code, 0, both.output());
  t.is(both.stdout.length, 20_001);
  t.true(both.stdout.every((l) => /^(step|\d+),/.test(l)));
  t.is(both.stderr.length, 2);
  t.regex(both.stderr[0]!, /^wrote \S+events\.out\.tfevents\./);
  for (const args of [['export-metrics', dir, '--csv', '/dev/stdout'], ['summary', dir, '--per', '1']]) {
    const p = spawn(process.execPath, [alexnetBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // the first bytes read, then the pipe closed, as `| head -1` does
    await new Promise<void>((resolve) => p.stdout.once('data', () => resolve()));
    p.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
    t.is(code, 141, args.join(' '));
    t.is(err, '', 'no stack trace, no message');
  }
});

test('a full disk: the event file is one line, exit 2, and the folder made for it is not left behind empty', async (t) => {
  if (process.getuid?.() !== 0) {
    t.fail('this test mounts a tmpfs and needs root (CI runs as root)');
    return;
  }
  const disk = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-export-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12k', 'tmpfs', disk], { stdio: 'pipe' });
  t.teardown(() => {
    execFileSync('umount', [disk]);
    fs.rmSync(disk, { recursive: true, force: true });
  });
  fs.writeFileSync(path.join(disk, 'fill'), Buffer.alloc(8000));
  const p = alexnet(['export-metrics', 'training/cifar10', '--tensorboard', path.join(disk, 'tb')]);
  const { code } = await p.exited;
  t.is(code, 2);
  t.regex(p.stderr.join('\n'), /^alexnet: cannot write the event file \S+: no space left on the device \(ENOSPC\)$/);
  t.deepEqual(fs.readdirSync(disk), ['fill']);
});
