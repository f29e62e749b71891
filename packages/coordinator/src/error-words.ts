/**
 * How the text reports word a classifier's error: a share as a percentage, and the top-5 error only where it
 * says something (with five classes or fewer every label is among the top 5 and the top-5 error is always 0).
 */
export const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** Whether a model with `classes` classes has a top-5 error worth printing. */
export const topFiveMeaningful = (classes: number): boolean => classes > 5;

/** "top-1 error A, top-5 error B", or "top-1 error A" alone for a model of five classes or fewer. */
export function errorWords(top1: number, top5: number, classes: number): string {
  return topFiveMeaningful(classes) ? `top-1 error ${pct(top1)}, top-5 error ${pct(top5)}` : `top-1 error ${pct(top1)}`;
}
