/** rpc.ts streamHandler: a server stream whose caller cancels stops writing instead of waiting for a drain forever. */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { streamHandler } from '../src/rpc.js';

const same = (b: Buffer) => b;
const service: grpc.ServiceDefinition = {
  Big: { path: '/test.Big/Big', requestStream: false, responseStream: true, requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same, originalName: 'Big' },
};

test('a cancelled server stream ends its handler with CANCELLED while it waits for a drain', async (t) => {
  let written = 0;
  let ended: (outcome: unknown) => void = () => {};
  const handlerEnded = new Promise<unknown>((r) => (ended = r));
  const chunk = Buffer.alloc(1 << 20, 7);
  const server = new grpc.Server();
  server.addService(service, {
    Big: streamHandler<Buffer, Buffer>(async (_req, write) => {
      try {
        // far more than HTTP/2's windows and the stream's buffer hold: without a reader, a write waits for drain
        for (let i = 0; i < 1000; i++) {
          await write(chunk);
          written++;
        }
        ended('all written');
      } catch (e) {
        ended(e);
        throw e;
      }
    }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  const Client = grpc.makeGenericClientConstructor(service, 'Big');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const call = (client as unknown as { Big(req: Buffer): grpc.ClientReadableStream<Buffer> }).Big(Buffer.alloc(0));
  call.on('error', () => {});
  await new Promise<void>((r) => call.once('data', () => r()));
  call.pause();
  // let the server fill the windows and block on a drain, then go
  await new Promise((r) => setTimeout(r, 300));
  call.cancel();
  const outcome = await Promise.race([handlerEnded, new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5000))]);
  t.true(outcome instanceof Error, `the handler's outcome: ${String(outcome)}`);
  t.is((outcome as { code?: number }).code, grpc.status.CANCELLED);
  t.true(written < 1000, `${written} of 1000 chunks written`);
});
