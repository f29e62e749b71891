/** An environment variable (ALEXNET_WEBGPU_BATCH, ALEXNET_DAWN_POLL, ALEXNET_WEBGPU_GEMM, ALEXNET_WEBGPU_SPLIT_K, ALEXNET_WASM_THREAD_CHOICE) with a value the program cannot use. */
export class EnvSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvSettingError';
  }
}
