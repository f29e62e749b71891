/**
 * Ports for processes a test starts on a port it must know beforehand (a worker whose --peer is itself, a worker
 * started again on its old address, Slurm's daemons).
 *
 * A port found free with listen(0) comes from the kernel's ephemeral range, where any process's next listen(0) or
 * outgoing connection may take it before the test's process binds it: with the test files running in parallel
 * that happens. These come from below that range (Linux's default starts at 32768), where only an explicit bind
 * takes a port, at random so that parallel test files do not pick the same one, and are checked free now.
 */
import net from 'node:net';

const LOW = 20_000;
const HIGH = 32_000;

const bindable = (port: number, host: string) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });

/** A port in [20000, 32000) that nothing on `host` listens on now. */
export async function reservedPort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (await bindable(port, host)) return port;
  }
  throw new Error(`no free port in ${LOW}..${HIGH - 1} on ${host} after 200 tries`);
}
