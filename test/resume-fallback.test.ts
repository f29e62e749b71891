/**
 * Damaged checkpoints as a user meets them (issue 20): `alexnet verify` names each one's state, `--resume`
 * passes over damaged ones to the newest that verifies (saying which and how many steps that loses), a run
 * with none that verifies is one line and exit 2, and the checkpoint of a step is written before its
 * evaluation, which a run resumed from it does first unless the run's log has it. Tiny preset, a few steps.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeSafetensors, encodeSafetensors } from '@alexnet-mp/core';
import { readCheckpointHeader } from '@alexnet-mp/coordinator';
import { alexnet, type Proc } from './helpers.js';

const common = ['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '8'];
const ck = (dir: string, step: number) => path.join(dir, 'checkpoints', `step-${String(step).padStart(9, '0')}.safetensors`);
const own = (p: Proc) => p.stderr.filter((l) => l.startsWith('alexnet: '));

interface Event {
  event: string;
  step?: number;
  start_step?: number;
}
const events = (runDir: string): Event[] =>
  fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);

/** A run of 6 steps with a checkpoint and an evaluation every 2. */
async function sixSteps(t: import('ava').ExecutionContext): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-fallback-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const p = alexnet([...common, '--steps', '6', '--checkpoint-every', '2', '--eval-every', '2', '--eval-batches', '1', '--run-dir', dir]);
  t.is((await p.exited).code, 0, p.output());
  return dir;
}

test('verify names each checkpoint\'s step and state; --resume passes over damaged ones (a flipped bit, a planted 3e38) to the newest that verifies, says what it loses, and does not repeat the evaluation of that step the log has', async (t) => {
  const dir = await sixSteps(t);
  // the checkpoint of a step comes before its evaluation, and says that evaluation is due
  const first = events(dir).filter((e) => e.event === 'checkpoint' || e.event === 'eval').map((e) => `${e.event} ${e.step}`);
  t.deepEqual(first, ['checkpoint 2', 'eval 2', 'checkpoint 4', 'eval 4', 'checkpoint 6', 'eval 6']);
  t.is(readCheckpointHeader(ck(dir, 4)).state.extra!.eval_due, true);

  // step 6: a bit flipped in its data; step 4: a 3e38 planted by a writer that checksummed it (the values catch it)
  const six = fs.readFileSync(ck(dir, 6));
  six[six.length - 40]! ^= 0x04;
  fs.writeFileSync(ck(dir, 6), six);
  const { tensors, metadata } = decodeSafetensors(fs.readFileSync(ck(dir, 4)));
  tensors.get('classifier.1.weight')!.data[7] = 3e38;
  fs.writeFileSync(ck(dir, 4), encodeSafetensors([...tensors.values()], metadata));

  const v = alexnet(['verify', dir]);
  t.is((await v.exited).code, 1, v.output());
  t.is(v.stdout.length, 3, v.output());
  t.is(v.stdout[0], 'step-000000002.safetensors  checkpoint  step 2  ok');
  t.regex(v.stdout[1]!, /^step-000000004\.safetensors  checkpoint  step 4  FAILED: .*step-000000004\.safetensors is damaged: tensor classifier\.1\.weight holds the absurd value 3\.00e\+38 \(beyond ±1\.84e\+19, where its square overflows float32\) at index 7, which no trained model holds$/);
  t.regex(v.stdout[2]!, /^step-000000006\.safetensors  checkpoint  step 6  FAILED: .*step-000000006\.safetensors is damaged: tensor momentum\.\S+ does not match its checksum \(its data, bytes \d+\.\.\d+ of the file\)$/);

  const r = alexnet([...common, '--resume', dir, '--steps', '8']);
  t.is((await r.exited).code, 0, r.output());
  const out = r.output();
  t.notRegex(out, /diverged/);
  t.regex(out, /step-000000006\.safetensors is damaged: tensor momentum\.\S+ does not match its checksum .*: set aside as step-000000006\.safetensors\.damaged/);
  t.regex(out, /step-000000004\.safetensors is damaged: .*3\.00e\+38.*: set aside as step-000000004\.safetensors\.damaged/);
  t.regex(out, /resuming from \S+step-000000002\.safetensors \(step 2\), the newest checkpoint that verifies: 4 steps since it \(to step 6\) are lost and done again/);
  // the resumed session: steps 3..8; step 2's checkpoint said its evaluation was due, and the log has it (the first session did it)
  t.regex(out, /the evaluation after step 2 is in \S+metrics\.jsonl already: not done again/);
  const ev = events(dir);
  const session = ev.slice(ev.map((e) => e.event).lastIndexOf('run'));
  t.is(session[0]!.start_step, 2);
  t.deepEqual(
    session.filter((e) => e.event !== 'done').slice(1).map((e) => `${e.event} ${e.step}`),
    ['step 2', 'step 3', 'checkpoint 4', 'eval 4', 'step 4', 'step 5', 'checkpoint 6', 'eval 6', 'step 6', 'step 7', 'checkpoint 8', 'eval 8'],
  );
  const after = alexnet(['verify', dir]);
  t.is((await after.exited).code, 0, after.output());
  t.deepEqual(after.stdout.map((l) => l.replace(/ +/g, ' ')), ['step-000000004.safetensors checkpoint step 4 ok', 'step-000000006.safetensors checkpoint step 6 ok', 'step-000000008.safetensors checkpoint step 8 ok']);
  t.regex(after.stderr.join('\n'), /2 checkpoints set aside as damaged by --resume, not checked: step-000000004\.safetensors\.damaged, step-000000006\.safetensors\.damaged/);
});

test('a run stopped during the evaluation that follows a checkpoint (the log has the checkpoint, not the evaluation): --resume does that evaluation first', async (t) => {
  const dir = await sixSteps(t);
  // as if killed during the evaluation after step 6: its eval line, and what follows it, never written
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n');
  const lastEval = lines.map((l) => l.startsWith('{"event":"eval"')).lastIndexOf(true);
  t.regex(lines[lastEval]!, /"step":6/);
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.slice(0, lastEval).join('\n') + '\n');
  const r = alexnet([...common, '--resume', dir, '--steps', '8']);
  t.is((await r.exited).code, 0, r.output());
  t.notRegex(r.output(), /not done again/);
  const ev = events(dir);
  const session = ev.slice(ev.map((e) => e.event).lastIndexOf('run'));
  t.is(session[0]!.start_step, 6);
  t.deepEqual(
    session.filter((e) => e.event !== 'done').slice(1).map((e) => `${e.event} ${e.step}`),
    ['eval 6', 'step 6', 'step 7', 'checkpoint 8', 'eval 8'],
  );
});

test('no checkpoint that verifies (empty, truncated in the header, truncated in the data): --resume, export and predict are one line each, exit 2', async (t) => {
  const dir = await sixSteps(t);
  fs.writeFileSync(ck(dir, 2), '');
  fs.truncateSync(ck(dir, 4), 100);
  fs.truncateSync(ck(dir, 6), fs.statSync(ck(dir, 6)).size - 1000);
  const cases: [string[], RegExp][] = [
    [
      [...common, '--resume', dir, '--steps', '8'],
      /^alexnet: --resume \S+: none of its 3 checkpoints verifies \(\S+step-000000006\.safetensors is damaged: tensor \S+: its bytes \[\d+, \d+\) run past the end of the file \(\d+ bytes of data\): truncated\?; \S+step-000000004\.safetensors is damaged: its header of \d+ bytes runs past the end of the file \(100 bytes\): truncated, or the header length is damaged; \S+step-000000002\.safetensors is damaged: the file is empty\)$/,
    ],
    [['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--resume', dir], /^alexnet: --resume \S+: none of its 3 checkpoints verifies \(/],
    [['export', '--run', dir, '--out', path.join(dir, 'm.safetensors')], /^alexnet: \S+step-000000006\.safetensors is damaged: tensor .*truncated\? \(alexnet verify \S+ checks them all; --step N reads another\)$/],
  ];
  for (const [args, want] of cases) {
    const p = alexnet(args);
    t.is((await p.exited).code, 2, p.output());
    t.is(own(p).length, 1, p.output());
    t.regex(own(p)[0]!, want, args.join(' '));
    t.notRegex(p.output(), /internal error|\n\s+at /);
  }
  // a damaged model file
  const model = path.join(dir, 'model.safetensors');
  const bytes = fs.readFileSync(path.join(import.meta.dirname, '..', 'models', 'cifar10.safetensors'));
  bytes[bytes.length - 5]! ^= 0x01;
  fs.writeFileSync(model, bytes);
  // any image: the model is refused before it is read
  const image = path.join(dir, 'grey.png');
  fs.writeFileSync(image, Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==', 'base64'));
  const p = alexnet(['predict', image, '--model', model]);
  t.is((await p.exited).code, 2, p.output());
  t.deepEqual(own(p).length, 1, p.output());
  t.regex(own(p)[0]!, /^alexnet: \S+model\.safetensors is damaged: tensor classifier\.6\.bias does not match its checksum/);
});
