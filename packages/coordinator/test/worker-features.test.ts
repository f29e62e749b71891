/** worker-features.ts: a run refuses, at the handshake, a worker that lacks what it needs (an older build). */
import test from 'ava';
import { FEATURES } from '@alexnet-mp/worker';
import { lacks, neededFeatures, unmetNeed } from '../src/worker-features.js';

test('this build meets every need; an older worker is refused for the first need it lacks, with what to do', (t) => {
  const all = { decayBiases: false, resume: true, evaluate: true };
  t.deepEqual(neededFeatures(all).map((n) => n.feature), ['no-bias-decay', 'set-parameters', 'evaluate']);
  t.is(unmetNeed([...FEATURES], all), null);
  // a worker from before no_bias_decay would decay the biases whatever it is sent
  t.regex(unmetNeed(['evaluate', 'set-parameters', 'activations'], all)!, /would decay the biases .*SgdHyper\.no_bias_decay.*update it, or give --decay-biases/);
  // a run that decays its biases (runs from before the option) trains on such a worker as before
  t.is(unmetNeed(['evaluate', 'set-parameters', 'activations'], { ...all, decayBiases: true }), null);
  t.regex(unmetNeed(['no-bias-decay'], { decayBiases: false, resume: true, evaluate: false })!, /cannot resume a run/);
  t.regex(unmetNeed(['no-bias-decay'], { decayBiases: undefined, resume: false, evaluate: true })!, /cannot evaluate/);
  t.is(unmetNeed([], { decayBiases: true, resume: false, evaluate: false }), null, 'the first release: a plain run');
});

test('one feature asked on its own (an evaluation between steps) gets the same sentence as at the handshake', (t) => {
  t.is(lacks([...FEATURES], 'evaluate'), null);
  t.is(lacks(['no-bias-decay', 'set-parameters'], 'evaluate'), unmetNeed([], { decayBiases: true, resume: false, evaluate: true }));
  t.regex(lacks([], 'evaluate')!, /cannot evaluate .*Worker\.Evaluate/);
});
