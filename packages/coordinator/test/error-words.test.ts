/** error-words.ts: the top-5 error is printed only where a model has more than five classes. */
import test from 'ava';
import { errorWords } from '../src/error-words.js';
import { formatEvaluation, type EvaluationReport } from '../src/evaluate-model.js';

test('top-1 and top-5 error for more than five classes, top-1 alone for five or fewer', (t) => {
  t.is(errorWords(0.25, 0.05, 10), 'top-1 error 25.0%, top-5 error 5.0%');
  t.is(errorWords(0.25, 0, 6), 'top-1 error 25.0%, top-5 error 0.0%');
  t.is(errorWords(0.25, 0, 5), 'top-1 error 25.0%');
  t.is(errorWords(0.5, 0, 4), 'top-1 error 50.0%');
});

test("`alexnet evaluate`'s text for a model of four classes says no top-5 error", (t) => {
  const names = ['a', 'b', 'c', 'd'];
  const report: EvaluationReport = {
    images: 4,
    views: 'centre',
    loss: 1.2,
    top1_error: 0.5,
    top5_error: 0,
    classes: names,
    per_class: names.map((name, c) => ({ class: c, name, images: 1, top1_error: c % 2 })),
    confusion: names.map((_, c) => names.map((__, p) => (p === (c % 2 ? 0 : c) ? 1 : 0))),
  };
  t.is(formatEvaluation(report).split('\n')[0], 'top-1 error 50.0%, loss 1.200 on 4 held-out images (centre crops)');
  t.is(formatEvaluation({ ...report, classes: [...names, 'e', 'f'] }).split('\n')[0], 'top-1 error 50.0%, top-5 error 0.0%, loss 1.200 on 4 held-out images (centre crops)');
});
