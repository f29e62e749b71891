/**
 * Seeded random numbers, identical in every process: dropout masks, weight
 * initialisation, data order and augmentation all come from here, so a run
 * is reproducible and the two-worker run matches the one-process run.
 * (mulberry32 for uniforms; Box-Muller for normals.)
 */
export class Rng {
  private state: number;
  /** Box-Muller's second normal, waiting (a number field of its own: no heap number made at each pair). */
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal. */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    this.hasSpare = true;
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** The generator's state, for checkpoints. */
  save(): { state: number; spare: number | null } {
    return { state: this.state, spare: this.hasSpare ? this.spare : null };
  }

  static restore(s: { state: number; spare: number | null }): Rng {
    const r = new Rng(0);
    r.state = s.state >>> 0;
    r.hasSpare = s.spare !== null;
    r.spare = s.spare ?? 0;
    return r;
  }
}

/** A seed derived from several integers (run seed, step, layer, tower), stable across processes. */
export function deriveSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 13;
  }
  return h >>> 0;
}
