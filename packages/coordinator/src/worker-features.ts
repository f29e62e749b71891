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

/** The features a run needs, each with what an older worker lacks and what to do. */
export function neededFeatures(n: RunNeeds): { feature: Feature; lacking: string }[] {
  const out: { feature: Feature; lacking: string }[] = [];
  if (n.decayBiases !== true) out.push({ feature: 'no-bias-decay', lacking: 'would decay the biases (an older build without SgdHyper.no_bias_decay): update it, or give --decay-biases' });
  if (n.resume) out.push({ feature: 'set-parameters', lacking: 'cannot resume a run (an older build without Worker.SetParameters): update it' });
  if (n.evaluate) out.push({ feature: 'evaluate', lacking: 'cannot evaluate (an older build without Worker.Evaluate): update it or run without evaluation' });
  return out;
}

/** The first need a worker's feature list does not meet, as the rest of a sentence after its label; null when it meets all. */
export function unmetNeed(features: readonly string[], n: RunNeeds): string | null {
  return neededFeatures(n).find((x) => !features.includes(x.feature))?.lacking ?? null;
}
