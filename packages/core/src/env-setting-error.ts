/** An environment variable (ALEXNET_WEBGPU_BATCH, ALEXNET_DAWN_POLL, ALEXNET_WEBGPU_GEMM, ALEXNET_WEBGPU_SPLIT_K, ALEXNET_WASM_THREAD_CHOICE, ALEXNET_POOL_PER_KERNEL) with a value the program cannot use. */
export class EnvSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvSettingError';
  }
}

const ON = ['1', 'on', 'true', 'yes'];
const OFF = ['0', 'off', 'false', 'no'];

/** Whether an on/off variable is off: 0, off, false or no (any case); on: 1, on, true, yes; unset or empty: `dflt`. */
export function envSwitchOn(name: string, dflt: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env[name] ?? '').trim().toLowerCase();
  if (v === '') return dflt;
  if (ON.includes(v)) return true;
  if (OFF.includes(v)) return false;
  throw new EnvSettingError(`${name}=${env[name]}: give 1 (on) or 0 (off)`);
}
