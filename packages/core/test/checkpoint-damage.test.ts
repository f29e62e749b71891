/**
 * Damaged checkpoints and model files: every damage is a CheckpointError that names the file and says what
 * is wrong (flipped bytes in the data or the header, truncation, planted absurd values, an empty file);
 * files written before checksums existed still load, said once. Also the checksum itself, pruning by step,
 * the removal of stray temporary files and the bounded mkdir.
 */
import test, { type ExecutionContext } from 'ava';
import { tempDir } from './data-fixtures.js';
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '../src/crc32c.js';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from '../src/checkpoint/safetensors.js';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, listCheckpoints, readMetadataOnly, readVerified, removeStrayTemporaries, unverifiedNote, writeCheckpointFile } from '../src/checkpoint/checkpoint.js';
import { decodeModel, encodeModel } from '../src/checkpoint/model-file.js';
import { verifyFile } from '../src/checkpoint/verify.js';
import { FileError, makeDir } from '../src/fs-errors.js';
import { initTowerParams } from '../src/model/params.js';
import { tiny } from '../src/model/presets.js';

const tmp = (t: ExecutionContext) => tempDir(t, 'alexnet-damage-');
const writeTo = (t: ExecutionContext, name: string, buf: Buffer): string => {
  const f = path.join(tmp(t), name);
  fs.writeFileSync(f, buf);
  return f;
};
const params = () => [initTowerParams(tiny, 0, 5), initTowerParams(tiny, 1, 5)] as [ReturnType<typeof initTowerParams>, ReturnType<typeof initTowerParams>];
const good = encodeCheckpoint(tiny, params(), { step: 12, seed: 5, preset: 'tiny', extra: { batch: 8 } });
const headerEnd = 8 + Number(good.readBigUInt64LE(0));

const flipped = (buf: Buffer, at: number, mask = 0x01): Buffer => {
  const b = Buffer.from(buf);
  b[at] = b[at]! ^ mask;
  return b;
};

/** The same file as written before checksums existed: the header without the two checksum entries. */
function withoutChecksums(buf: Buffer): Buffer {
  const headerEnd = 8 + Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, headerEnd).toString('utf8')) as { __metadata__: Record<string, string> };
  delete header.__metadata__.crc32c_tensors;
  delete header.__metadata__.crc32c_header;
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), buf.subarray(headerEnd)]);
}

const damaged = (t: import('ava').ExecutionContext, buf: Buffer, message: RegExp, label: string) => {
  const e = t.throws(() => decodeCheckpoint(tiny, buf, 'ck/step-12'), { instanceOf: CheckpointError }, label);
  t.true(e?.damaged, `${label}: a damaged file`);
  t.regex(e?.message ?? '', /^ck\/step-12 (is damaged|is not a checkpoint)/, label);
  t.regex(e?.message ?? '', message, label);
  t.false((e?.message ?? '').includes('\n'), `${label}: one line`);
};

test('crc32c: the check vector, and slicing by 8 equals the bytewise definition at every length and split', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  const table: number[] = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table.push(c >>> 0);
  }
  const bytewise = (b: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of b) c = table[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 131 + 7) & 0xff);
  for (let n = 0; n <= data.length; n++) t.is(crc32c(data.subarray(0, n)), bytewise(data.subarray(0, n)), `length ${n}`);
  t.is(crc32c(data.subarray(37), crc32c(data.subarray(0, 37))), crc32c(data), 'continued over two parts');
});

test('a sound checkpoint verifies and round-trips; its checksums are not part of the metadata read back', (t) => {
  const { state, checksums } = decodeCheckpoint(tiny, good, 'ck');
  t.is(checksums, 'verified');
  t.is(state.step, 12);
  const { metadata } = decodeSafetensors(good);
  t.false('crc32c_tensors' in metadata || 'crc32c_header' in metadata);
});

test('a flipped bit anywhere in the header length or the header is caught, as damage to the header', (t) => {
  for (let at = 0; at < headerEnd; at++) {
    for (const mask of [0x01, 0x10]) {
      const e = t.throws(() => decodeCheckpoint(tiny, flipped(good, at, mask), 'ck/step-12'), { instanceOf: CheckpointError }, `byte ${at} ^ ${mask}`);
      if (!e?.damaged) t.fail(`byte ${at}: not called damage: ${e?.message}`);
    }
  }
  // a value changed in the metadata, the JSON still sound: the header checksum
  const i = good.indexOf(String.raw`batch\":8`);
  t.true(i > 0);
  damaged(t, flipped(good, i + 8, 0x01), /its header does not match its checksum/, 'batch 8 -> 9');
  damaged(t, flipped(good, 40, 0x20), /header/, 'a byte early in the header');
});

test('a flipped bit in any tensor\'s data names that tensor', (t) => {
  for (let at = headerEnd; at < good.length; at += 97) {
    damaged(t, flipped(good, at), /tensor \S+ does not match its checksum \(its data, bytes \d+\.\.\d+ of the file\)/, `data byte ${at}`);
  }
  damaged(t, flipped(good, good.length - 1, 0x80), /tensor momentum\.\S+ does not match its checksum/, 'the last byte');
});

test('an empty file and files truncated at several points say so', (t) => {
  damaged(t, Buffer.alloc(0), /the file is empty/, 'empty');
  damaged(t, good.subarray(0, 5), /5 bytes, too short for a safetensors header: truncated\?/, '5 bytes');
  damaged(t, good.subarray(0, 8), /runs past the end of the file \(8 bytes\)/, 'the length alone');
  damaged(t, good.subarray(0, headerEnd >> 1), /runs past the end of the file/, 'half the header');
  damaged(t, good.subarray(0, headerEnd), /run past the end of the file \(0 bytes of data\): truncated\?/, 'the header alone');
  damaged(t, good.subarray(0, (headerEnd + good.length) >> 1), /run past the end of the file .*truncated\?/, 'half the data');
  damaged(t, good.subarray(0, good.length - 1), /run past the end of the file/, 'one byte short');
  damaged(t, Buffer.concat([good, Buffer.from('xx')]), /2 bytes past the end of its data/, 'two bytes too many');
});

test('reading the header alone says what a whole read says of a file whose header is bad, a text file included', (t) => {
  const dir = tmp(t);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'step-000000012.safetensors');
  fs.writeFileSync(file, good);
  t.is(readMetadataOnly(file).preset, 'tiny');
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['5 bytes', good.subarray(0, 5)],
    ['the length alone', good.subarray(0, 8)],
    ['half the header', good.subarray(0, headerEnd >> 1)],
    ['a text file', Buffer.from('notes about this run, not a checkpoint\n')],
    ['a header that does not parse', Buffer.concat([good.subarray(0, 9), Buffer.from('x'.repeat(headerEnd - 9)), good.subarray(headerEnd)])],
  ];
  for (const [what, bytes] of cases) {
    fs.writeFileSync(file, bytes);
    const whole = t.throws(() => readVerified(bytes, file), { instanceOf: CheckpointError }, what);
    const head = t.throws(() => readMetadataOnly(file), { instanceOf: CheckpointError }, what);
    t.is(head?.message, whole?.message, what);
    t.true(head?.damaged, what);
  }
  t.regex(t.throws(() => readMetadataOnly(file + '.gone'))?.message ?? '', /cannot read .*\.gone/);
});

test('a planted 3e38, NaN or infinity is damage, reported as such: caught by the checksum, or without one by the values', (t) => {
  const planted = (v: number) => {
    const p = params();
    p[1].get('fc6')!.w[3] = v;
    return encodeCheckpoint(tiny, p, { step: 12, seed: 5, preset: 'tiny' });
  };
  // planted into a file's bytes: the checksum of the tensor
  const raw = Buffer.from(good);
  raw.writeFloatLE(3e38, headerEnd + 16);
  damaged(t, raw, /does not match its checksum/, 'bytes overwritten');
  // written with its checksums by a run gone wrong, or into a file without checksums: the values
  damaged(t, planted(3e38), /tensor classifier\.1\.weight holds the absurd value 3\.00e\+38 \(beyond ±1\.84e\+19, where its square overflows float32\) at index \d+, which no trained model holds/, '3e38');
  damaged(t, withoutChecksums(planted(3e38)), /holds the absurd value 3\.00e\+38/, '3e38, no checksums');
  damaged(t, planted(Number.NaN), /holds NaN at index/, 'NaN');
  damaged(t, planted(-Infinity), /holds -Infinity at index/, '-Infinity');
});

test('a file written before checksums still loads, unverified, and says so once', (t) => {
  const old = withoutChecksums(good);
  const { state, checksums, params: p } = decodeCheckpoint(tiny, old, 'old');
  t.is(checksums, 'absent');
  t.is(state.step, 12);
  t.deepEqual(Array.from(p[0].get('conv1')!.w), Array.from(decodeCheckpoint(tiny, good).params[0].get('conv1')!.w));
  t.regex(unverifiedNote('runs/x/step-12', checksums) ?? '', /^runs\/x\/step-12 has no checksums \(written by an older version or another program\): read without verifying it$/);
  t.is(unverifiedNote('runs/x/step-12', checksums), null, 'said once');
  t.is(unverifiedNote('runs/x/step-13', 'verified'), null);
});

test('model files are verified the same way', (t) => {
  const model = encodeModel(tiny, params(), { classes: ['a', 'b', 'c', 'd'], inputMean: [128, 128, 128] });
  t.is(decodeModel(model, 'm').checksums, 'verified');
  const hEnd = 8 + Number(model.readBigUInt64LE(0));
  const e = t.throws(() => decodeModel(flipped(model, hEnd + 10), 'm.safetensors'), { instanceOf: CheckpointError });
  t.regex(e?.message ?? '', /^m\.safetensors is damaged: tensor features\.0\.weight does not match its checksum/);
  t.throws(() => decodeModel(Buffer.from('GIF89a not a model at all'), 'x.gif'), { message: /^x\.gif is not a model file \(not safetensors: / });
  t.throws(() => decodeSafetensors(Buffer.alloc(0)), { instanceOf: SafetensorsError, message: 'the file is empty' });
});

/**
 * A safetensors file saved again by another writer, as Python's `save_file(load_file(f), f2, metadata)` does: the
 * metadata first, the tensors in another order (here: by name, backwards), their bytes moved with them;
 * `edit` changes the header's JSON object before it is written.
 */
function savedAgain(buf: Buffer, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>) => void = () => {}): Buffer {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const data = buf.subarray(8 + n);
  const names = Object.keys(header).filter((k) => k !== '__metadata__').sort().reverse();
  const out: Record<string, unknown> = { __metadata__: header.__metadata__ };
  const parts: Buffer[] = [];
  let offset = 0;
  for (const name of names) {
    const [a, b] = header[name]!.data_offsets;
    parts.push(data.subarray(a, b));
    out[name] = { dtype: header[name]!.dtype, shape: header[name]!.shape, data_offsets: [offset, offset + b - a] };
    offset += b - a;
  }
  edit(out as Parameters<typeof edit>[0]);
  const json = Buffer.from(JSON.stringify(out), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...parts]);
}

test('a model or checkpoint saved again by another safetensors writer (its tensors in another order) still verifies; one changed on purpose says how to read it; another dtype cannot be read, not damaged', (t) => {
  const model = encodeModel(tiny, params(), { classes: ['a', 'b', 'c', 'd'], inputMean: [128, 128, 128] });
  const again = savedAgain(model);
  t.notDeepEqual(again.subarray(0, 64), model.subarray(0, 64), 'another header');
  const read = decodeModel(again, 'm');
  t.is(read.checksums, 'verified');
  t.deepEqual(read.params, decodeModel(model, 'm').params);
  t.like(verifyFile(writeTo(t, 'again.safetensors', again)), { kind: 'model', state: 'ok' });
  const cp = decodeCheckpoint(tiny, savedAgain(good), 'c');
  t.is(cp.state.step, 12);
  // a tensor's bytes damaged after the move: still named
  const hEnd = 8 + Number(again.readBigUInt64LE(0));
  t.throws(() => decodeModel(flipped(again, hEnd + 10), 'm.safetensors'), { instanceOf: CheckpointError, message: /^m\.safetensors is damaged: tensor \S+ does not match its checksum/ });
  // the class names changed with the checksums kept: what to do about it
  const renamed = savedAgain(model, (h) => ((h.__metadata__ as Record<string, string>).classes = JSON.stringify(['w', 'x', 'y', 'z'])));
  t.throws(() => decodeModel(renamed, 'm.safetensors'), {
    message: 'm.safetensors is damaged: its header does not match its checksum: the header (or metadata) is damaged, or was changed by another program (a file changed on purpose reads once its crc32c_header and crc32c_tensors metadata entries are removed)',
  });
  // a tensor in float16: not damage
  const half = savedAgain(model, (h) => ((h['features.0.bias'] as { dtype: string }).dtype = 'F16'));
  t.throws(() => decodeModel(half, 'm.safetensors'), { instanceOf: CheckpointError, message: /^m\.safetensors cannot be read: tensor features\.0\.bias: dtype F16, only F32 is read \(save the tensors as float32\)$/ });
});

test('verifyFile: a verdict per file, never an exception for a bad one', (t) => {
  const dir = tmp(t);
  const ok = path.join(dir, 'ok.safetensors');
  const old = path.join(dir, 'old.safetensors');
  const bad = path.join(dir, 'bad.safetensors');
  fs.writeFileSync(ok, good);
  fs.writeFileSync(old, withoutChecksums(good));
  fs.writeFileSync(bad, flipped(good, good.length - 3));
  t.like(verifyFile(ok), { kind: 'checkpoint', step: 12, preset: 'tiny', state: 'ok' });
  t.like(verifyFile(old), { kind: 'checkpoint', step: 12, state: 'unverified' });
  const v = verifyFile(bad);
  t.is(v.state, 'failed');
  // a tensor damaged, the header intact: what the file is, as its header says
  t.like(v, { kind: 'checkpoint', step: 12, preset: 'tiny' });
  // a header that does not read: nothing said of it
  const noHeader = path.join(dir, 'no-header.safetensors');
  fs.writeFileSync(noHeader, flipped(good, 8));
  t.like(verifyFile(noHeader), { kind: undefined, step: undefined, state: 'failed' });
  // a header that still parses but does not match its checksum (a letter of the preset changed): nothing said of it either
  const renamed = Buffer.from(good);
  const at = renamed.indexOf('"preset":"tiny"');
  t.true(at > 0 && at < 8 + Number(renamed.readBigUInt64LE(0)));
  renamed.write('T', at + '"preset":"'.length);
  const changed = path.join(dir, 'changed-header.safetensors');
  fs.writeFileSync(changed, renamed);
  const vc = verifyFile(changed);
  t.like(vc, { kind: undefined, step: undefined, preset: undefined, state: 'failed' });
  t.regex(vc.problem!, /header does not match its checksum/);
  t.regex(v.problem!, /bad\.safetensors is damaged: tensor momentum\.\S+ does not match its checksum/);
  t.regex(verifyFile(path.join(dir, 'missing')).problem!, /cannot read .*missing: no such file or folder \(ENOENT\)/);
});

test('pruning keeps the last K up to the step written: never the file just written, never a later step', (t) => {
  const dir = tmp(t);
  for (const s of [10, 20, 30, 90]) writeCheckpointFile(dir, s, Buffer.from(`ckpt ${s}`), 10);
  // a run back at step 40 (resumed from 30) with --keep 1: 10, 20 and 30 go; 40 (its own) and 90 (not its step) stay
  writeCheckpointFile(dir, 40, Buffer.from('ckpt 40'), 1);
  t.deepEqual(listCheckpoints(dir).map((f) => path.basename(f)), ['step-000000040.safetensors', 'step-000000090.safetensors']);
  writeCheckpointFile(dir, 50, Buffer.from('ckpt 50'), 2);
  t.deepEqual(listCheckpoints(dir).map((f) => path.basename(f)), ['step-000000040.safetensors', 'step-000000050.safetensors', 'step-000000090.safetensors']);
});

test('stray temporary files of writers killed mid-write are removed; nothing else is', (t) => {
  const dir = tmp(t);
  const names = ['.step-000000010.safetensors.4242.tmp', '.run.json.77.tmp', 'step-000000010.safetensors', 'notes.tmp', '.hidden'];
  for (const n of names) fs.writeFileSync(path.join(dir, n), 'x');
  t.deepEqual(removeStrayTemporaries(dir).sort(), ['.run.json.77.tmp', '.step-000000010.safetensors.4242.tmp']);
  t.deepEqual(fs.readdirSync(dir).sort(), ['.hidden', 'notes.tmp', 'step-000000010.safetensors']);
  t.deepEqual(removeStrayTemporaries(path.join(dir, 'none')), []);
});

test('makeDir: made one folder at a time; under /proc, under a file it is one FileError, at once', (t) => {
  const dir = tmp(t);
  makeDir(path.join(dir, 'a', 'b', 'c'));
  t.true(fs.statSync(path.join(dir, 'a', 'b', 'c')).isDirectory());
  makeDir(path.join(dir, 'a'), 'the run directory');
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const t0 = Date.now();
  t.throws(() => makeDir('/proc/alexnet-x/y', 'the run directory'), { instanceOf: FileError, message: /^cannot make the run directory \/proc\/alexnet-x\/y: no such file or folder \(ENOENT\)$/ });
  t.true(Date.now() - t0 < 30_000, 'no endless retry');
  t.throws(() => makeDir(path.join(dir, 'f', 'x')), { instanceOf: FileError, message: /f\/x: a part of the path is a file, not a folder \(ENOTDIR\)$/ });
  t.throws(() => makeDir(path.join(dir, 'f')), { instanceOf: FileError, message: /f is a file, not a folder$/ });
});
