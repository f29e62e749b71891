/** For the worker's tests: a Peer server on loopback that serves only Stream (with `stream`), the rest UNIMPLEMENTED. */
import type { ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { protocol, type ExchangeAck, type ExchangeRequest } from '../src/protocol.js';

export type StreamHandler = grpc.handleBidiStreamingCall<ExchangeRequest, ExchangeAck>;

/** Starts the server (insecure, on a free port, shut down at the test's end) and resolves with its port. */
export async function streamPeer(t: ExecutionContext, stream: StreamHandler, options: grpc.ServerOptions = {}): Promise<number> {
  const { Peer } = protocol();
  const server = new grpc.Server(options);
  const none = (_: unknown, cb: (e: Partial<grpc.StatusObject>) => void) => cb({ code: grpc.status.UNIMPLEMENTED });
  server.addService(Peer.service, { Hello: none, Exchange: none, EvalExchange: none, Stream: stream });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  return port;
}
