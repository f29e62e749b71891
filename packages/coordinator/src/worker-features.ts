/**
 * What a run needs of a worker beyond alexnet.v1's first release, by the names workers list in
 * HandshakeReply.features (proto/README.md, "Additions within v1"): checked at the handshake, so
 * that an older worker is refused with a sentence before the run rather than failing (or, for the
 * bias rule, silently training differently) in the middle of it.
 */
import type { Feature } from '@alexnet-mp/worker';

export interface RunNeeds {
  /** Weight decay on the biases too; without it the workers must honour SgdHyper.no_bias_decay. */
  readonly decayBiases?: boolean;
  readonly resume: boolean;
  readonly evaluate: boolean;
}

/** What a worker without each feature cannot do, and what to do about it (after the worker's label). */
const LACKING = {
  'no-bias-decay': 'would decay the biases (an older build without SgdHyper.no_bias_decay): update it, or give --decay-biases',
  'set-parameters': 'cannot resume a run (an older build without Worker.SetParameters): update it',
  evaluate: 'cannot evaluate (an older build without Worker.Evaluate): update it or run without evaluation',
} as const satisfies Partial<Record<Feature, string>>;
export type NeededFeature = keyof typeof LACKING;

/** The features a run needs, each with what an older worker lacks and what to do. */
export function neededFeatures(n: RunNeeds): { feature: NeededFeature; lacking: string }[] {
  const needed: NeededFeature[] = [];
  if (n.decayBiases !== true) needed.push('no-bias-decay');
  if (n.resume) needed.push('set-parameters');
  if (n.evaluate) needed.push('evaluate');
  return needed.map((feature) => ({ feature, lacking: LACKING[feature] }));
}

/** The first need a worker's feature list does not meet, as the rest of a sentence after its label; null when it meets all. */
export function unmetNeed(features: readonly string[], n: RunNeeds): string | null {
  return neededFeatures(n).find((x) => !features.includes(x.feature))?.lacking ?? null;
}

/** Whether a worker lacks one feature: the rest of a sentence after its label, or null when it has it. */
export function lacks(features: readonly string[], feature: NeededFeature): string | null {
  return features.includes(feature) ? null : LACKING[feature];
}
