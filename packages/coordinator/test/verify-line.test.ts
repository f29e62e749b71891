/** alexnet verify's line per file (cli/verify-command.ts verdictLine): name, kind, step, state. */
import test from 'ava';
import { verdictLine } from '../src/cli/verify-command.js';

test('a file read whole says its kind and step; one whose header cannot be read says what it may be, and that its step was not read', (t) => {
  t.is(verdictLine({ file: '/m/cifar10.safetensors', kind: 'model', step: 15640, state: 'ok' }), 'cifar10.safetensors  model  step 15640  ok');
  // a checkpoint's name gives its step and kind even when its header is damaged
  t.is(verdictLine({ file: '/r/checkpoints/step-000000004.safetensors', state: 'failed', problem: 'damaged' }), 'step-000000004.safetensors  checkpoint  step 4  FAILED: damaged');
  t.is(verdictLine({ file: '/tmp/x.safetensors', state: 'failed', problem: 'damaged' }), 'x.safetensors  model or checkpoint  step not read  FAILED: damaged');
});
