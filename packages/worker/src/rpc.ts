/**
 * Small helpers around @grpc/grpc-js: unary calls as promises (with a
 * deadline and an AbortSignal that cancels the call), errors that carry a
 * gRPC status code, and handler wrappers that turn thrown errors into
 * statuses with a readable message.
 */
import * as grpc from '@grpc/grpc-js';

/** An error with the gRPC status the caller should see. */
export class RpcError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
    this.name = 'RpcError';
  }
}

export function isServiceError(e: unknown): e is grpc.ServiceError {
  return e instanceof Error && typeof (e as Partial<grpc.ServiceError>).code === 'number' && 'details' in e;
}

/**
 * grpc-js's details without its notes for developers: "No connection established. Last error: Error: connect
 * ECONNREFUSED 127.0.0.1:1. Resolution note: " is "connect ECONNREFUSED 127.0.0.1:1", and "Deadline exceeded
 * after 10.001s,name resolution: 0.054s,..." is "Deadline exceeded after 10.001s".
 */
export function tidyDetails(details: string): string {
  return details
    .replace(/\s*Resolution note:.*$/s, '')
    .replace(/^No connection established\. Last error: (?:Error: )?/, '')
    .replace(/^(Deadline exceeded after [\d.]+s),.*$/s, '$1')
    // OpenSSL's reasons ("802C...:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:FILE:LINE:",
    // a line break after): the library and the reason, on one line
    .replace(/[0-9A-F]{8,}:error:[0-9A-F]+:([^:\n]+):[^:\n]*:([^:\n]+):[^\s]*/g, '$1: $2')
    .replace(/\s*\n\s*/g, ' ')
    .trim()
    .replace(/\.$/, '')
    .trimEnd();
}

/** "UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:1" for a gRPC error, the message for anything else. */
export function describeError(e: unknown): string {
  if (isServiceError(e)) return `${grpc.status[e.code] ?? e.code}: ${tidyDetails(e.details || e.message)}`;
  return e instanceof Error ? e.message : String(e);
}

export interface CallOptions {
  /** Milliseconds from now; none by default. */
  timeoutMs?: number;
  /** Aborting cancels the call (its promise rejects with CANCELLED). */
  signal?: AbortSignal;
  /**
   * Wait for the channel to connect (until the deadline) instead of failing fast when the server is not there
   * yet. grpc-js takes this as a metadata option (`Metadata.setOptions`), not as a call option.
   */
  waitForReady?: boolean;
}

/** A unary call's options, with the request's serialiser when it is not the service's own (aligned-exchange.ts). */
export interface UnaryOptions<Req> extends CallOptions {
  serialize?: (req: Req) => Buffer;
}

/** The call's metadata: empty, with the wait-for-ready flag when asked. */
function callMetadata(o: CallOptions): grpc.Metadata {
  const meta = new grpc.Metadata();
  if (o.waitForReady) meta.setOptions({ waitForReady: true });
  return meta;
}

type UnaryMethod = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

/** Calls a unary method of a client made from a proto-loader service. */
export function unary<Req, Res>(client: grpc.Client, method: string, req: Req, o: UnaryOptions<Req> = {}): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new RpcError(grpc.status.CANCELLED, 'cancelled before it started'));
      return;
    }
    const fn = (client as unknown as Record<string, UnaryMethod>)[method];
    if (typeof fn !== 'function') throw new Error(`no method ${method} on this client`);
    const opts: grpc.CallOptions = {};
    if (o.timeoutMs !== undefined) opts.deadline = Date.now() + o.timeoutMs;
    const onAbort = () => call.cancel();
    const done = (err: grpc.ServiceError | null, res: unknown) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(res as Res);
    };
    // the method as the client's service defines it, but with the caller's serialiser
    const def = o.serialize ? (client.constructor as Partial<grpc.ServiceClientConstructor>).service?.[method] : undefined;
    if (o.serialize && !def) throw new Error(`no definition of ${method} on this client`);
    const call = def
      ? client.makeUnaryRequest(def.path, o.serialize!, def.responseDeserialize as (b: Buffer) => unknown, req, callMetadata(o), opts, done)
      : fn.call(client, req, callMetadata(o), opts, done);
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reads a server stream to the end. */
export function collectStream<Req, Res>(client: grpc.Client, method: string, req: Req, o: CallOptions = {}): Promise<Res[]> {
  return new Promise<Res[]>((resolve, reject) => {
    const fn = (client as unknown as Record<string, (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<Res>>)[method];
    if (typeof fn !== 'function') throw new Error(`no method ${method} on this client`);
    const opts: grpc.CallOptions = {};
    if (o.timeoutMs !== undefined) opts.deadline = Date.now() + o.timeoutMs;
    const call = fn.call(client, req, callMetadata(o), opts);
    const out: Res[] = [];
    call.on('data', (m: Res) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
  });
}

/** Sends `msgs` on a client stream (waiting for drain) and resolves with the reply. */
export function clientStream<Req, Res>(client: grpc.Client, method: string, msgs: Iterable<Req>, o: CallOptions = {}): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const fn = (client as unknown as Record<string, (meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientWritableStream<Req>>)[method];
    if (typeof fn !== 'function') throw new Error(`no method ${method} on this client`);
    const opts: grpc.CallOptions = {};
    if (o.timeoutMs !== undefined) opts.deadline = Date.now() + o.timeoutMs;
    let failed = false;
    let onFailed = () => {};
    // a server that ends the call early (a refusal) never drains the stream: the writer stops then
    const whenFailed = new Promise<void>((r) => (onFailed = r));
    const call = fn.call(client, callMetadata(o), opts, (err, res) => {
      if (err) {
        failed = true;
        onFailed();
        reject(err);
      } else resolve(res as Res);
    });
    o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    void (async () => {
      for (const m of msgs) {
        if (failed) return;
        if (!call.write(m)) await Promise.race([new Promise<void>((r) => call.once('drain', () => r())), whenFailed]);
      }
      if (!failed) call.end();
    })();
  });
}

/** What a client-streaming handler does with its messages, one at a time. */
export interface StreamIntake<Req, Res> {
  /** Checks and keeps one message; throwing ends the call with that error at once (nothing more is read). */
  take(m: Req): void;
  /** After the last message: the reply. */
  finish(): Promise<Res>;
}

/**
 * A client-streaming handler that checks each message as it arrives: `open` runs before any message is read
 * (throwing refuses the call at once, without reading the stream), `take` for each message (throwing ends the
 * call), `finish` after the last. Nothing is buffered here: memory is what `take` keeps.
 */
export function clientStreamHandler<Req, Res>(open: (call: grpc.ServerReadableStream<Req, Res>) => StreamIntake<Req, Res>): grpc.handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    let done = false;
    const fail = (e: unknown) => {
      if (done) return;
      done = true;
      call.removeAllListeners('data');
      callback(toStatus(e) as grpc.ServerErrorResponse, null);
    };
    let intake: StreamIntake<Req, Res>;
    try {
      intake = open(call);
    } catch (e) {
      fail(e);
      return;
    }
    call.on('data', (m: Req) => {
      if (done) return;
      try {
        intake.take(m);
      } catch (e) {
        fail(e);
      }
    });
    call.on('error', fail);
    call.on('end', () => {
      if (done) return;
      intake.finish().then((res) => {
        if (done) return;
        done = true;
        callback(null, res);
      }, fail);
    });
  };
}

/** The gRPC status a handler's error ends its call with: an RpcError's code, a ServiceError's, or INTERNAL. */
export function toStatus(e: unknown): Partial<grpc.StatusObject> {
  if (e instanceof RpcError) return { code: e.code, details: e.message };
  if (isServiceError(e)) return { code: e.code, details: e.details || e.message };
  return { code: grpc.status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}

/** A unary handler from an async function; thrown RpcErrors become their status, anything else INTERNAL. */
export function unaryHandler<Req, Res>(f: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    f(call.request, call).then(
      (res) => callback(null, res),
      (e: unknown) => callback(toStatus(e) as grpc.ServerErrorResponse, null),
    );
  };
}

/**
 * A server-streaming handler from an async function that writes to the call (waiting for drain) and returns.
 * Once the caller cancels (or goes), `write` rejects with CANCELLED, also while it waits for a drain that will
 * never come: the handler stops and lets go of what it was sending instead of waiting forever.
 */
export function streamHandler<Req, Res>(f: (req: Req, write: (m: Res) => Promise<void>, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const gone = () => new RpcError(grpc.status.CANCELLED, 'the caller cancelled the call');
    const write = (m: Res) =>
      new Promise<void>((resolve, reject) => {
        if (call.cancelled || call.destroyed) {
          reject(gone());
          return;
        }
        if (call.write(m)) {
          resolve();
          return;
        }
        const settle = (cancelled: boolean) => {
          call.off('drain', onDrain);
          call.off('cancelled', onCancel);
          call.off('close', onCancel);
          if (cancelled) reject(gone());
          else resolve();
        };
        const onDrain = () => settle(false);
        const onCancel = () => settle(true);
        call.once('drain', onDrain);
        call.once('cancelled', onCancel);
        call.once('close', onCancel);
      });
    f(call.request, write, call).then(
      () => call.end(),
      (e: unknown) => call.emit('error', toStatus(e)),
    );
  };
}
