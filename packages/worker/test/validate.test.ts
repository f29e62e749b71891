/** The worker's input checks (validate.ts), the token helpers and the refusal log (auth.ts), and the message size limits. */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { crossingSizes, getPreset, towerParamLayers } from '@alexnet-mp/core';
import { RpcError } from '../src/rpc.js';
import { checkFinite, checkHyper, checkLabels, checkRunId, checkStepImages, imageBytes } from '../src/validate.js';
import { CredentialsError, MIN_TOKEN_LENGTH, RefusalLog, checkToken, isLoopback, randomToken, tokensEqual } from '../src/auth.js';
import { maxMessageBytes } from '../src/protocol.js';

const tiny = getPreset('tiny');
const paper = getPreset('paper');

/** The check throws INVALID_ARGUMENT with a message matching `re`. */
function invalid(t: import('ava').ExecutionContext, f: () => void, re: RegExp): void {
  const e = t.throws(f, { instanceOf: RpcError });
  t.is((e as RpcError).code, grpc.status.INVALID_ARGUMENT);
  t.regex(e!.message, re);
}

test('Step images: exactly the configured batch of the preset, or a message with the expected and the received size', (t) => {
  const n = 4;
  t.notThrows(() => checkStepImages(tiny, n, new Uint8Array(imageBytes(tiny, n))));
  invalid(t, () => checkStepImages(tiny, n, new Uint8Array(imageBytes(tiny, n) - 1)), /Step images: 3071 bytes, expected 3072 \(uint8 \[3\]\[4\]\[16\]\[16\]: the configured batch of 4 images of preset tiny\)/);
  invalid(t, () => checkStepImages(tiny, n, new Uint8Array(imageBytes(tiny, n + 1))), /Step images: 3840 bytes, expected 3072/);
  invalid(t, () => checkStepImages(paper, 1, new Uint8Array(0)), /Step images: 0 bytes, expected 150528 \(uint8 \[3\]\[1\]\[224\]\[224\]/);
});

test('labels: one per image (or none where optional), each a class of the preset', (t) => {
  t.notThrows(() => checkLabels(tiny, [0, 1, 2, 3], 4, 'Step'));
  t.notThrows(() => checkLabels(tiny, [], 4, 'Evaluate', true));
  invalid(t, () => checkLabels(tiny, [], 4, 'Step'), /Step labels: 0, expected 4 \(one per image\)/);
  invalid(t, () => checkLabels(tiny, [0, 1, 2], 4, 'Evaluate', true), /Evaluate labels: 3, expected 4 \(one per image, or none\)/);
  invalid(t, () => checkLabels(tiny, [0, 4, 1, 1], 4, 'Step'), /label 4 of image 1 is out of range: preset tiny has 4 classes \(0\.\.3\)/);
  invalid(t, () => checkLabels(paper, [999, 1000], 2, 'Step'), /label 1000 of image 1 is out of range: preset paper has 1000 classes \(0\.\.999\)/);
  invalid(t, () => checkLabels(tiny, [-1], 1, 'Step'), /label -1 of image 0/);
  invalid(t, () => checkLabels(tiny, [1.5], 1, 'Step'), /label 1\.5 of image 0/);
});

test('SGD hyper-parameters: present, finite and not negative', (t) => {
  t.notThrows(() => checkHyper({ lr: 0.01, momentum: 0.9, weight_decay: 0.0005 }));
  t.notThrows(() => checkHyper({ lr: 0, momentum: 0, weight_decay: 0 }));
  invalid(t, () => checkHyper(null), /Step hyper: missing/);
  invalid(t, () => checkHyper({ lr: Number.NaN, momentum: 0.9, weight_decay: 0 }), /lr NaN, expected a finite number >= 0/);
  invalid(t, () => checkHyper({ lr: 0.01, momentum: Number.POSITIVE_INFINITY, weight_decay: 0 }), /momentum Infinity/);
  invalid(t, () => checkHyper({ lr: 0.01, momentum: 0.9, weight_decay: -1 }), /weight_decay -1/);
});

test('run ids: printable, no spaces or control characters (they go into log lines), at most 128 characters', (t) => {
  t.notThrows(() => checkRunId('20260101T000000Z-abcdef', 'Handshake'));
  invalid(t, () => checkRunId('', 'Handshake'), /Handshake: run id "" is not 1\.\.128 printable ASCII/);
  invalid(t, () => checkRunId('a\nb', 'Handshake'), /run id "a\\nb"/);
  invalid(t, () => checkRunId('my run', 'Handshake'), /run id "my run"/);
  invalid(t, () => checkRunId('x'.repeat(129), 'Handshake'), /run id "x{80}\.\.\."/);
});

test('parameter tensors: a NaN or an infinity is named with its index', (t) => {
  t.notThrows(() => checkFinite(Float32Array.of(0, -1, 3e38), 'conv1.w'));
  invalid(t, () => checkFinite(Float32Array.of(0, Number.NaN), 'conv1.w'), /conv1\.w: value NaN at index 1, expected finite numbers/);
  invalid(t, () => checkFinite(Float32Array.of(Number.NEGATIVE_INFINITY), 'fc8.vb'), /fc8\.vb: value -Infinity at index 0/);
});

test('tokens: compared whole (any length), at least 16 printable characters, random ones differ', (t) => {
  const a = randomToken();
  t.true(a.length >= MIN_TOKEN_LENGTH);
  t.not(a, randomToken());
  t.true(tokensEqual(a, a.slice()));
  t.false(tokensEqual(a, a.slice(0, -1)));
  t.false(tokensEqual(a, a + 'x'));
  t.false(tokensEqual(a, ''));
  t.false(tokensEqual(a, a.slice(0, -1) + (a.endsWith('A') ? 'B' : 'A')));
  t.is(checkToken(a, 'x'), a);
  t.throws(() => checkToken('short', '--token'), { instanceOf: CredentialsError, message: /the token from --token has 5 characters: use at least 16/ });
  t.throws(() => checkToken('has a space in it, long enough', 'F'), { instanceOf: CredentialsError, message: /a space or a character outside printable ASCII/ });
  t.throws(() => checkToken('tab\tseparated-and-long-enough', 'F'), { instanceOf: CredentialsError });
});

test('the refusal log says who and what, and at most `burst` lines a minute, counting the ones left out', (t) => {
  const lines: string[] = [];
  const log = new RefusalLog((l) => lines.push(l), 3);
  for (let i = 0; i < 10; i++) log.note(`127.0.0.1:${1000 + i}`, 'Worker.Step', 'no token');
  t.is(log.count, 10);
  t.deepEqual(lines, ['refused Worker.Step from 127.0.0.1:1000: no token', 'refused Worker.Step from 127.0.0.1:1001: no token', 'refused Worker.Step from 127.0.0.1:1002: no token']);
});

test('loopback addresses: what a worker without authentication may listen on without a warning', (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) t.true(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.5', 'gpu-a']) t.false(isLoopback(h), h);
});

test('message size limits: the largest legitimate message of the preset and batch, plus 1 MiB; not unlimited', (t) => {
  for (const spec of [tiny, getPreset('cifar'), paper]) {
    for (const batch of [1, 16, 128]) {
      const limit = maxMessageBytes(spec, batch);
      const images = imageBytes(spec, batch) + 5 * batch;
      const crossing = Math.max(...crossingSizes(spec, batch).map((c) => c.floats)) * 4;
      const param = Math.max(...[0, 1].flatMap((tw) => towerParamLayers(spec, tw as 0 | 1).map((l) => l.shape.reduce((a, b) => a * b, 1) * 4)));
      const largest = Math.max(images, crossing, param, spec.classes * batch * 4);
      t.is(limit, largest + (1 << 20), `${spec.name}, batch ${batch}`);
      t.true(limit < 2 ** 31 - 1, 'within what gRPC can take');
    }
  }
  // tiny at batch 4: a Step of 4 images is 3 kB, the limit about 1 MiB (the worker refuses anything larger)
  t.true(maxMessageBytes(tiny, 4) < 1.1 * 2 ** 20);
  // the paper preset: one tower's fc6 weights (2048 x 9216 floats, 75.5 MB) are its largest message
  t.is(maxMessageBytes(paper, 128), 2048 * 9216 * 4 + (1 << 20));
});
