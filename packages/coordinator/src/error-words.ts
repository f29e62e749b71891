/**
 * How the text reports word a classifier's error: a share as a percentage, and the top-5 error only where it
 * says something (with five classes or fewer every label is among the top 5 and the top-5 error is always 0).
 */
import { getPreset, presetNames } from '@alexnet-mp/core';

export const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** Whether a model with `classes` classes has a top-5 error worth printing. */
export const topFiveMeaningful = (classes: number): boolean => classes > 5;

/** The classes of a run's preset, named in its log; a preset this build does not know is read as having more than five. */
export const classesOfPreset = (preset: string | undefined): number => (preset !== undefined && (presetNames as readonly string[]).includes(preset) ? getPreset(preset).classes : Infinity);

/** "top-1 error A, top-5 error B", or "top-1 error A" alone for a model of five classes or fewer. */
export function errorWords(top1: number, top5: number, classes: number): string {
  return topFiveMeaningful(classes) ? `top-1 error ${pct(top1)}, top-5 error ${pct(top5)}` : `top-1 error ${pct(top1)}`;
}
