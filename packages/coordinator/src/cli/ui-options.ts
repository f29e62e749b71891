/** The dashboard's options, on `alexnet coordinator` (which serves it) and `alexnet launch` (which passes them on). */
import type { Options } from 'yargs';
import { isLoopback } from '@alexnet-mp/worker';
import { UserError } from './errors.js';

export const uiOptions = {
  'ui-port': {
    type: 'number',
    describe: 'serve the dashboard (live curves, worker status, kernels, feature maps) on this port; 0: a free port the OS picks; not given: no dashboard. The URL is printed',
  },
  'ui-host': { type: 'string', default: '127.0.0.1', describe: 'address the dashboard listens on (default: this machine only; another machine can reach it through ssh -L PORT:127.0.0.1:PORT HOST). Beyond loopback it has no authentication: refused unless --ui-insecure' },
  'ui-insecure': { type: 'boolean', default: false, describe: 'serve the dashboard on a --ui-host beyond loopback without authentication: anyone who reaches the port sees the run (its curves, kernels and test images)' },
  'ui-refresh': { type: 'number', default: 5, describe: "seconds between fetches of the workers' conv1 kernels while a dashboard page is open (each fetch waits for the current step to end)" },
} satisfies Record<string, Options>;

export interface UiArgs {
  'ui-port'?: number;
  'ui-host': string;
  'ui-insecure': boolean;
  'ui-refresh': number;
}

export function checkUiArgs(a: UiArgs): void {
  const p = a['ui-port'];
  if (p !== undefined && (!Number.isInteger(p) || p < 0 || p > 65535)) throw new UserError(`--ui-port must be a port 0..65535 (0: a free one), got ${p}`);
  if (!a['ui-host'] || a['ui-host'].trim() === '') throw new UserError('--ui-host needs an address, e.g. 127.0.0.1');
  if (!(a['ui-refresh'] > 0)) throw new UserError(`--ui-refresh must be > 0 seconds, got ${a['ui-refresh']}`);
  if (p !== undefined && !isLoopback(a['ui-host']) && !a['ui-insecure']) {
    throw new UserError(
      `--ui-host ${a['ui-host']}: the dashboard has no authentication, and anyone who reaches the port would see the run (its curves, kernels and test images). ` +
        `To look from another machine, keep the default and forward the port (${p ? `ssh -L ${p}:127.0.0.1:${p} THIS-HOST` : 'ssh -L PORT:127.0.0.1:PORT THIS-HOST, PORT the one printed'}), or give --ui-insecure to accept that`,
    );
  }
}

/** The dashboard options as `launch` passes them to the coordinator (none when no --ui-port). */
export function uiArgsToForward(a: UiArgs): string[] {
  if (a['ui-port'] === undefined) return [];
  return ['--ui-port', String(a['ui-port']), '--ui-host', a['ui-host'], ...(a['ui-insecure'] ? ['--ui-insecure'] : []), '--ui-refresh', String(a['ui-refresh'])];
}
