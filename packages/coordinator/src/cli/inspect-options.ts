/** The inspection service's options, on `alexnet coordinator` (which serves it) and `alexnet launch` (which passes them on). */
import type { Options } from 'yargs';
import { isLoopback } from '@alexnet-mp/worker';
import { UserError } from './errors.js';

export const inspectServeOptions = {
  'inspect-port': {
    type: 'number',
    describe:
      'serve alexnet.v1.Coordinator (inspection: `alexnet inspect ... --coordinator HOST:PORT` and tools) on this port; 0: a free port; not given: none. ' +
      'The address is printed. Each request waits for the current step to end and delays the next step by its own time',
  },
  'inspect-host': { type: 'string', default: '127.0.0.1', describe: "address the inspection service listens on (default: this machine only); callers need the coordinator's credentials (--tls, the token)" },
} satisfies Record<string, Options>;

export interface InspectServeArgs {
  'inspect-port'?: number;
  'inspect-host': string;
}

export function checkInspectServeArgs(a: InspectServeArgs): void {
  const p = a['inspect-port'];
  if (p !== undefined && (!Number.isInteger(p) || p < 0 || p > 65535)) throw new UserError(`--inspect-port must be a port 0..65535 (0: a free one), got ${p}`);
  if (!a['inspect-host'] || a['inspect-host'].trim() === '') throw new UserError('--inspect-host needs an address, e.g. 127.0.0.1');
}

/** `coordinator` only (launch always has credentials: its random token at least). */
export const inspectInsecureOption = {
  'inspect-insecure': {
    type: 'boolean',
    default: false,
    describe: "serve inspection beyond loopback (--inspect-host) without --tls or a token: anyone who reaches the port can read the run's kernels, feature maps and predictions",
  },
} satisfies Record<string, Options>;

/**
 * The inspection service beyond loopback without credentials is refused (as a worker's --host is), unless
 * --inspect-insecure accepts it: anyone who reaches the port could read the run. Accepted so, the warning to print.
 */
export function checkInspectExposure(a: InspectServeArgs & { 'inspect-insecure'?: boolean }, hasCredentials: boolean): string | null {
  if (a['inspect-port'] === undefined || hasCredentials || isLoopback(a['inspect-host'])) return null;
  if (a['inspect-insecure']) return `warning: inspection served on ${a['inspect-host']} without authentication (--inspect-insecure): anyone who reaches its port can read this run`;
  throw new UserError(
    `--inspect-host ${a['inspect-host']} without authentication: anyone who reaches the port could read this run's kernels, feature maps and predictions. ` +
      'Give --token-file FILE (the workers\' token) or --tls DIR (`alexnet certs`), or --inspect-insecure to accept that',
  );
}

/** The options as `launch` passes them to the coordinator (none without --inspect-port). */
export function inspectArgsToForward(a: InspectServeArgs): string[] {
  if (a['inspect-port'] === undefined) return [];
  return ['--inspect-port', String(a['inspect-port']), '--inspect-host', a['inspect-host']];
}
