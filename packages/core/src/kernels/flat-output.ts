/**
 * gpu.js shapes every kernel result into nested arrays (one subarray object
 * per output cell for Array(4) returns). Our kernels index flat NCHW-style
 * memory and want the packed Float32Array back: building 3 million
 * subarrays only to flatten them again cost more than the GEMM itself
 * (measured: 800x14400x64 took 2.4 s with shaping).
 *
 * Both gpu.js backends we run (webasm, webgpu) build results through one
 * method, `_shapeOutput(data, output, componentCount)`, where `data` is
 * already the tightly packed result [z][y][x][component]. We make it return
 * `data` as it is. The `cpu` backend does not go through it: Kernel.run
 * flattens its nested arrays instead, so all modes return the same layout.
 */
import gpujs from 'gpu.js';

interface Shaper {
  prototype: { _shapeOutput?: (data: Float32Array, output: number[], componentCount: number) => unknown };
}

let installed = false;

export function installFlatOutput(): void {
  if (installed) return;
  installed = true;
  const mod = gpujs as unknown as Record<string, Shaper | undefined>;
  for (const name of ['WebAssemblyKernel', 'WebGPUKernel']) {
    const cls = mod[name];
    if (cls?.prototype._shapeOutput) {
      cls.prototype._shapeOutput = (data: Float32Array) => data;
    }
  }
}

/** Flattens whatever a kernel returned (flat already, or cpu-mode nested arrays) into one packed Float32Array. */
export function flattenResult(r: unknown, expectedLength: number): Float32Array {
  if (r instanceof Float32Array) {
    if (r.length !== expectedLength) throw new Error(`kernel result has ${r.length} values, expected ${expectedLength}`);
    return r;
  }
  const out = new Float32Array(expectedLength);
  let i = 0;
  const walk = (v: unknown): void => {
    if (typeof v === 'number') {
      out[i++] = v;
    } else if (v instanceof Float32Array) {
      out.set(v, i);
      i += v.length;
    } else if (Array.isArray(v)) {
      for (const e of v) walk(e);
    } else {
      throw new Error(`unexpected kernel result element ${typeof v}`);
    }
  };
  walk(r);
  if (i !== expectedLength) throw new Error(`kernel result has ${i} values, expected ${expectedLength}`);
  return out;
}
