/**
 * Bounds on the connections a worker keeps: at most `maxConnections` open at once (more are closed on
 * arrival), a connection that sends nothing within `firstBytesMs` of opening is closed (a half-open or
 * silent TCP connection), and one with no call for `idleMs` is closed by grpc-js (a client that wants it
 * again reconnects by itself). Without them, idle connections pile up until the worker runs out of file
 * handles.
 */
import type net from 'node:net';
import type * as grpc from '@grpc/grpc-js';

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly firstBytesMs: number;
  readonly idleMs: number;
}

/** A coordinator, a peer, an inspection tool or two and their reconnects need a handful; a flood is refused. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 64, firstBytesMs: 10_000, idleMs: 15 * 60_000 };

/** The grpc-js server option that closes connections without calls. */
export const idleServerOptions = (l: ConnectionLimits): grpc.ServerOptions => ({ 'grpc.max_connection_idle_ms': l.idleMs });

/** Caps the listener's open connections; `onDrop` hears of each refused one. */
export function capConnections(listener: net.Server, l: ConnectionLimits, onDrop: (from: string) => void): void {
  listener.maxConnections = l.maxConnections;
  listener.on('drop', (d?: { remoteAddress?: string; remotePort?: number }) => onDrop(d?.remoteAddress ? `${d.remoteAddress}:${d.remotePort ?? 0}` : 'an unknown address'));
}

/**
 * Hands `socket` to `inject` (grpc-js) once it has sent its first bytes (put back for HTTP/2 to read); closes it
 * if it sends nothing within `firstBytesMs` of opening, and `onSilent` hears of it.
 */
export function injectWhenItSpeaks(socket: net.Socket, l: ConnectionLimits, inject: (socket: net.Socket) => void, onSilent: () => void): void {
  // a reset before the first bytes is no one's business (after them, HTTP/2 handles the socket's errors)
  socket.on('error', () => {});
  const timer = setTimeout(() => {
    onSilent();
    socket.destroy();
  }, l.firstBytesMs);
  socket.once('close', () => clearTimeout(timer));
  socket.once('data', (first: Buffer) => {
    clearTimeout(timer);
    socket.pause();
    socket.unshift(first);
    inject(socket);
  });
}

/** The connections open now, by the caller's address as grpc-js's `call.getPeer()` gives it ("HOST:PORT"). */
export class OpenConnections {
  private readonly open = new Set<string>();

  /** Counts `socket` as open until it closes. */
  add(socket: net.Socket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    this.open.add(key);
    socket.once('close', () => this.open.delete(key));
  }

  has(peer: string): boolean {
    return this.open.has(peer);
  }
}
