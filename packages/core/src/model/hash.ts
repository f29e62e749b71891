/**
 * The model's identity: sha256 of the preset's canonical JSON (keys sorted).
 * Workers and coordinator compare it in the handshake; a checkpoint records it
 * and refuses to load into another model.
 */
import { createHash } from 'node:crypto';
import type { ModelSpec } from './spec.js';

/** JSON with object keys sorted and undefined members left out, so equal specs give equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** sha256 (hex) of the spec's canonical JSON. */
export function modelHash(spec: ModelSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}
