/** evaluate-model.ts formatEvaluation: the per-class table and the confusion matrix as text. */
import test from 'ava';
import { formatEvaluation, perClassOf, type EvaluationReport } from '../src/evaluate-model.js';

const names = ['airplane', 'automobile', 'bird', 'cat', 'dog'];

function report(confusion: number[][]): EvaluationReport {
  const per_class = perClassOf(confusion, (c) => names[c]!);
  const images = per_class.reduce((a, c) => a + c.images, 0);
  const correct = confusion.reduce((a, row, c) => a + row[c]!, 0);
  return { images, views: 'centre', loss: 2, top1_error: 1 - correct / images, top5_error: 0, classes: names, per_class, confusion };
}

const matrix = (text: string) => text.slice(text.indexOf('confusion matrix')).trim().split('\n');

test('every class with images is a row and a column, each row adding up to its images', (t) => {
  const text = formatEvaluation(report([[3, 1, 0, 0, 0], [0, 4, 0, 0, 0], [1, 0, 3, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]));
  const lines = matrix(text);
  t.regex(lines[0]!, /in the order above; image counts/);
  t.deepEqual(lines.slice(1).map((l) => l.trim().split(/\s+/)), [
    ['airplane', '3', '1', '0'],
    ['automobile', '0', '4', '0'],
    ['bird', '1', '0', '3'],
  ]);
});

test('images taken for a class that has none get that class as a column: the matrix is never all zeros while the error is 100%', (t) => {
  // a data set with three classes scored against a five-class model: every image taken for cat or dog
  const text = formatEvaluation(report([[0, 0, 0, 4, 0], [0, 0, 0, 1, 3], [0, 0, 0, 0, 4], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]));
  t.regex(text, /^top-1 error 100\.0%/);
  t.regex(text, /\| airplane \| 4 \| 100\.0% \| cat \(100\.0%\) \|/);
  const lines = matrix(text);
  t.regex(lines[0]!, /a column per predicted class: airplane, automobile, bird, cat, dog; image counts/);
  const rows = lines.slice(1).map((l) => l.trim().split(/\s+/));
  t.deepEqual(rows, [
    ['airplane', '0', '0', '0', '4', '0'],
    ['automobile', '0', '0', '0', '1', '3'],
    ['bird', '0', '0', '0', '0', '4'],
  ]);
  for (const [c, row] of rows.entries()) t.is(row.slice(1).reduce((a, x) => a + Number(x), 0), report([[0, 0, 0, 4, 0], [0, 0, 0, 1, 3], [0, 0, 0, 0, 4], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]).per_class[c]!.images);
});

test('per class: the images of each label and their top-1 error; a class without images has none (null), not 0', (t) => {
  t.deepEqual(perClassOf([[3, 1], [0, 0]], (c) => names[c]!), [
    { class: 0, name: 'airplane', images: 4, top1_error: 0.25 },
    { class: 1, name: 'automobile', images: 0, top1_error: null },
  ]);
});
