/**
 * A port the run will listen on later (the dashboard's, the inspection service's, launch's workers'), tried at
 * once: a busy port, an address not of this machine or a name that does not resolve is then one line before any
 * worker is started or any image decoded, not an error minutes later.
 * Another process may still take it in between; the service then says so itself when it starts.
 */
import net from 'node:net';
import { UserError } from './errors.js';

export async function checkPortFree(host: string, port: number | undefined, option: string): Promise<void> {
  // port 0 too: a free one is found then, but an address that is not this machine's, or a name that does not resolve, is said now
  if (port === undefined) return;
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? `the port is in use (${option} 0 picks a free one)` : e.code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? `the name ${host} does not resolve` : e.code === 'EACCES' ? 'not allowed (ports below 1024 need root)' : e.message;
      reject(new UserError(`${option} ${port}: cannot listen on ${host}:${port}: ${why}`));
    });
    server.listen(port, host, () => server.close(() => resolve()));
  });
}
