/**
 * Checks of what a caller sends a worker, before anything of the run is
 * touched: a request that fails one is refused with INVALID_ARGUMENT and a
 * message that says what was expected and what came, and the run goes on as
 * if it had never arrived. (Tensors from the peer are checked by
 * protocol.ts's decodeTensor against the crossing's shape; the size of every
 * message is capped by the gRPC limits of maxMessageBytes.)
 */
import * as grpc from '@grpc/grpc-js';
import type { ModelSpec } from '@alexnet-mp/core';
import { RpcError } from './rpc.js';
import type { SgdHyperMsg } from './protocol.js';

const invalid = (message: string) => new RpcError(grpc.status.INVALID_ARGUMENT, message);

/** A string from the wire as it may appear in a message or a log line: quoted, control characters escaped, cut short. */
export const quoted = (s: string, max = 80): string => JSON.stringify(s.length > max ? `${s.slice(0, max)}...` : s);

/** Run ids appear in logs and file names: 1..128 printable ASCII characters, no spaces. */
export const isRunId = (id: string): boolean => /^[\x21-\x7e]{1,128}$/.test(id);

export function checkRunId(id: string, what: string): void {
  if (!isRunId(id)) throw invalid(`${what}: run id ${quoted(id)} is not 1..128 printable ASCII characters without spaces`);
}

/** Bytes of uint8 images [C][N][H][W] of the preset. */
export const imageBytes = (spec: ModelSpec, n: number): number => spec.inputChannels * n * spec.inputSize * spec.inputSize;

/** The images of a Step: exactly the configured batch of the preset's input. */
export function checkStepImages(spec: ModelSpec, batch: number, images: Uint8Array): void {
  const S = spec.inputSize;
  const want = imageBytes(spec, batch);
  if (images.length !== want) {
    throw invalid(`Step images: ${images.length} bytes, expected ${want} (uint8 [${spec.inputChannels}][${batch}][${S}][${S}]: the configured batch of ${batch} images of preset ${spec.name})`);
  }
}

/**
 * `n` labels (or none, with `optional`: an evaluation without labels), each a class of the preset.
 */
export function checkLabels(spec: ModelSpec, labels: readonly number[], n: number, what: string, optional = false): void {
  if (labels.length !== n && !(optional && labels.length === 0)) {
    throw invalid(`${what} labels: ${labels.length}, expected ${n} (one per image${optional ? ', or none' : ''})`);
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!Number.isInteger(l) || l < 0 || l >= spec.classes) throw invalid(`${what} labels: label ${l} of image ${i} is out of range: preset ${spec.name} has ${spec.classes} classes (0..${spec.classes - 1})`);
  }
}

/** A step's SGD hyper-parameters: present, finite, none negative. */
export function checkHyper(h: SgdHyperMsg | null | undefined): void {
  if (!h) throw invalid('Step hyper: missing: a step needs its SGD hyper-parameters (lr, momentum, weight_decay)');
  for (const k of ['lr', 'momentum', 'weight_decay'] as const) {
    const v = h[k];
    if (!Number.isFinite(v) || v < 0) throw invalid(`Step hyper: ${k} ${v}, expected a finite number >= 0`);
  }
}

/** A parameter or momentum tensor (or a chunk of one starting at `offset`): every value finite (a NaN or Inf would spread through the whole run). */
export function checkFinite(x: Float32Array, what: string, offset = 0): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]!)) throw invalid(`${what}: value ${x[i]} at index ${offset + i}, expected finite numbers`);
  }
}
