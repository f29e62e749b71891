/** The dashboard's options, on `alexnet coordinator` (which serves it) and `alexnet launch` (which passes them on). */
import type { Options } from 'yargs';
import { UserError } from './errors.js';

export const uiOptions = {
  'ui-port': {
    type: 'number',
    describe: 'serve the dashboard (live curves, worker status, kernels, feature maps) on this port; 0: a free port the OS picks; not given: no dashboard. The URL is printed',
  },
  'ui-host': { type: 'string', default: '127.0.0.1', describe: 'address the dashboard listens on (default: this machine only; 0.0.0.0 for every interface, with no authentication)' },
  'ui-refresh': { type: 'number', default: 5, describe: "seconds between fetches of the workers' conv1 kernels while a dashboard page is open (each fetch waits for the current step to end)" },
} satisfies Record<string, Options>;

export interface UiArgs {
  'ui-port'?: number;
  'ui-host': string;
  'ui-refresh': number;
}

export function checkUiArgs(a: UiArgs): void {
  const p = a['ui-port'];
  if (p !== undefined && (!Number.isInteger(p) || p < 0 || p > 65535)) throw new UserError(`--ui-port must be a port 0..65535 (0: a free one), got ${p}`);
  if (!a['ui-host'] || a['ui-host'].trim() === '') throw new UserError('--ui-host needs an address, e.g. 127.0.0.1');
  if (!(a['ui-refresh'] > 0)) throw new UserError(`--ui-refresh must be > 0 seconds, got ${a['ui-refresh']}`);
}

/** The dashboard options as `launch` passes them to the coordinator (none when no --ui-port). */
export function uiArgsToForward(a: UiArgs): string[] {
  if (a['ui-port'] === undefined) return [];
  return ['--ui-port', String(a['ui-port']), '--ui-host', a['ui-host'], '--ui-refresh', String(a['ui-refresh'])];
}
