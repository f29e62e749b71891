/** An environment variable (ALEXNET_WEBGPU_BATCH, ALEXNET_DAWN_POLL) with a value the program cannot use. */
export class EnvSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvSettingError';
  }
}
