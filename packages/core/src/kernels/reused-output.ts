/**
 * One result buffer per kernel, for results that are dead before the kernel runs again.
 *
 * gpu.js's webasm backend copies every result out of the kernel's WebAssembly memory into a
 * fresh Float32Array (`entry.f32.slice(...)`, in both its threaded and its one-thread path).
 * One training step of the cifar preset allocated 562 MiB that way (both towers;
 * `npm run bench -- --profile` prints the kernels' result bytes). V8 counts ArrayBuffer bytes as external memory and starts a
 * full mark-compact of the heap for about every 64 MiB of it: about 40 main-thread GC pauses a
 * step, and V8's helper threads busy besides. A GC's cost grows with the heap, so a worker whose
 * heap grows (the evaluation's towers, for one) pays more for each of them: measured in the
 * CIFAR-10 run, main-thread GC went from 10% to 17% of the time as steps slowed from 4.2 to 4.9 s.
 *
 * For a kernel whose callers only read its result before calling it again (im2col's columns,
 * read by the GEMMs of the same step; a GEMM's raw output, de-interleaved or gathered at once;
 * the backward kernels' input gradients, read by the layer below within the step),
 * `reuseOutputOf` swaps the kernel's memory view for one whose slice() returns a view of the
 * result where it lies, in the kernel's own WebAssembly memory: the same bytes, no new allocation
 * and no copy (`npm run bench` prints the GC pauses a step: 39 before, 22 with it, on this project's
 * 2-core machine; not copying conv2's 13 M-float columns out saves about 10 ms a call). The view stays
 * valid after other kernels run (each has its own memory) and until this kernel runs again; on
 * worker threads that memory is a SharedArrayBuffer, which typed arrays, Buffer.from and
 * Float32Array.set take as they take an ArrayBuffer.
 */

/** A view of a kernel's WebAssembly memory whose slice() returns a view of the same memory, not a copy. */
class ReusingView extends Float32Array {
  override slice(start?: number, end?: number): Float32Array<ArrayBuffer> {
    const from = start ?? 0;
    const to = end ?? this.length;
    if (from < 0 || to < from || to > this.length) return super.slice(start, end) as Float32Array<ArrayBuffer>;
    // a plain Float32Array (subarray would make another ReusingView, whose slice() would not copy)
    return new Float32Array(this.buffer as ArrayBuffer, this.byteOffset + from * 4, to - from);
  }
}

interface WasmEntry {
  f32: Float32Array | null;
}

/**
 * After a call of a gpu.js kernel function on the webasm backend: makes its active module's
 * results come back as views of the kernel's memory from the next call on. Other backends have
 * no such module and are left alone.
 */
export function reuseOutputOf(kernelFunction: unknown): void {
  const kernel = (kernelFunction as { kernel?: { _active?: WasmEntry | null } } | null)?.kernel;
  const entry = kernel?._active;
  if (!entry?.f32 || entry.f32 instanceof ReusingView) return;
  // the buffer is a SharedArrayBuffer when the kernel runs on worker threads; typed arrays take either
  entry.f32 = new ReusingView(entry.f32.buffer as ArrayBuffer, entry.f32.byteOffset, entry.f32.length);
}
