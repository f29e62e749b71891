/**
 * Three hosts on one machine: network namespaces for the coordinator and the two workers, joined by a
 * bridge in a fourth (veth pairs; needs root), and latency on the way between them: `tc netem` where the
 * kernel has it, else a relay in each worker's namespace that holds every byte (test/fixtures/delay-relay.ts).
 * Used by test/across-hosts.test.ts and bench/across-hosts.ts.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export interface Host {
  readonly ns: string;
  readonly address: string;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' }).toString();
export const inNs = (ns: string, ...cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'pipe' }).toString();

/**
 * Three namespaces (coordinator, worker 0, worker 1) on a bridge in a fourth; unique names and a random
 * 10.x.y.0/24. `onCleanup` gets the function that deletes them (deleting a namespace deletes its interfaces).
 */
export function threeHosts(onCleanup: (f: () => void) => void): { c: Host; w0: Host; w1: Host } {
  const id = randomBytes(2).toString('hex');
  const net = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]!}`;
  const sw = `amp${id}sw`;
  const made: string[] = [];
  onCleanup(() => {
    for (const ns of made.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  });
  const addNs = (ns: string) => {
    ip('netns', 'add', ns);
    made.push(ns);
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  };
  addNs(sw);
  inNs(sw, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  inNs(sw, 'ip', 'link', 'set', 'br0', 'up');
  const host = (name: string, n: number): Host => {
    const ns = `amp${id}${name}`;
    addNs(ns);
    // a veth pair made in the switch namespace: one end stays on the bridge, the other becomes the host's eth0
    inNs(sw, 'ip', 'link', 'add', `p${name}`, 'type', 'veth', 'peer', 'name', `h${name}`);
    inNs(sw, 'ip', 'link', 'set', `h${name}`, 'netns', ns);
    inNs(sw, 'ip', 'link', 'set', `p${name}`, 'master', 'br0');
    inNs(sw, 'ip', 'link', 'set', `p${name}`, 'up');
    inNs(ns, 'ip', 'link', 'set', `h${name}`, 'name', 'eth0');
    inNs(ns, 'ip', 'addr', 'add', `${net}.${n}/24`, 'dev', 'eth0');
    inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
    return { ns, address: `${net}.${n}` };
  };
  return { c: host('c', 1), w0: host('w0', 2), w1: host('w1', 3) };
}

/** netem's delay of `delayMs` on every host's way out; false when this kernel has no netem. */
export function addNetem(hosts: Host[], delayMs: number): boolean {
  try {
    for (const h of hosts) inNs(h.ns, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'netem', 'delay', `${delayMs}ms`);
    return true;
  } catch (e) {
    const msg = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message);
    if (/unknown|not found|No such file/i.test(msg)) return false;
    throw e;
  }
}

const relayScript = fileURLToPath(new URL('../test/fixtures/delay-relay.ts', import.meta.url));

/**
 * Starts a relay in `h`'s namespace that forwards `listenPort` to `targetPort` on h's address, holding every
 * byte `delayMs` each way; resolves once it relays. `onCleanup` gets the function that stops it.
 */
export function startRelay(h: Host, listenPort: number, targetPort: number, delayMs: number, onCleanup: (f: () => void) => void): Promise<void> {
  const p = spawn('ip', ['netns', 'exec', h.ns, process.execPath, '--import', 'tsx', relayScript, `${h.address}:${listenPort}`, `${h.address}:${targetPort}`, String(delayMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => p.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => (/relaying/.test(d.toString()) ? resolve() : undefined));
    p.on('exit', (code) => reject(new Error(`the delay relay in ${h.ns} exited with ${code}`)));
  });
}
