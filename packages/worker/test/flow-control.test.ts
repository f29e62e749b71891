/**
 * The HTTP/2 flow-control window (flow-control.ts): a grpc-js server given `grpc-node.flow_control_window`
 * advertises it for every stream and opens the connection's window to it (the project's grpc-js patch,
 * patches/README.md); without the option it keeps HTTP/2's 64 KiB. A large message then arrives whole.
 * Read from a plain HTTP/2 client, which sees the SETTINGS and WINDOW_UPDATE frames the server sends.
 */
import test from 'ava';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { FLOW_CONTROL_WINDOW_BYTES, flowControlOptions } from '../src/flow-control.js';
import { ExchangeStream } from '../src/exchange-stream.js';
import { protocol, type ExchangeRequest } from '../src/protocol.js';
import { streamPeer } from './stream-peer.js';

const HTTP2_DEFAULT_WINDOW = 65_535;

function serve(t: import('ava').ExecutionContext, options: grpc.ServerOptions, received: number[] = []): Promise<number> {
  return streamPeer(
    t,
    (call) => {
      call.on('data', (r: ExchangeRequest) => {
        received.push(r.tensor.data.byteLength);
        call.write({ step: r.step, point: r.point, direction: r.direction, code: grpc.status.OK, message: '' });
      });
      call.on('end', () => call.end());
    },
    { 'grpc.max_receive_message_length': 64 << 20, ...options },
  );
}

/** The server's SETTINGS (its stream window) and, a moment later, the connection window it granted. */
async function windowsOf(port: number): Promise<{ stream: number; connection: number }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
    });
    // the WINDOW_UPDATE follows the SETTINGS frame on the same connection: a ping's answer comes after it
    await new Promise<void>((resolve, reject) => session.ping((e) => (e ? reject(e) : resolve())));
    return { stream: session.remoteSettings.initialWindowSize ?? HTTP2_DEFAULT_WINDOW, connection: session.state.remoteWindowSize ?? HTTP2_DEFAULT_WINDOW };
  } finally {
    session.close();
  }
}

test('a server with the option advertises the window for each stream and for the connection', async (t) => {
  t.is(FLOW_CONTROL_WINDOW_BYTES, 16 * 1024 * 1024);
  const w = await windowsOf(await serve(t, flowControlOptions));
  t.is(w.stream, FLOW_CONTROL_WINDOW_BYTES);
  t.is(w.connection, FLOW_CONTROL_WINDOW_BYTES);
});

test("a server without it keeps HTTP/2's 64 KiB (the option, not grpc-js's default, opens the window)", async (t) => {
  const w = await windowsOf(await serve(t, {}));
  t.is(w.stream, HTTP2_DEFAULT_WINDOW);
  t.is(w.connection, HTTP2_DEFAULT_WINDOW);
});

test('tensors of 8 MiB cross a stream between a client and a server that both set the window', async (t) => {
  const received: number[] = [];
  const port = await serve(t, flowControlOptions, received);
  const { Peer } = protocol();
  const client = new Peer(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20, ...flowControlOptions });
  t.teardown(() => client.close());
  const s = new ExchangeStream(client);
  const floats = 2 * 1024 * 1024;
  const send = (step: number) =>
    s.send(
      { run_id: 'r', step, point: 'pool2', direction: 'FORWARD', from_tower: 0, tensor: { shape: [floats], data: Buffer.from(new Float32Array(floats).fill(step).buffer) } },
      30_000,
      new AbortController().signal,
    );
  await Promise.all([send(0), send(1), send(2)]);
  s.close();
  t.deepEqual(received, [floats * 4, floats * 4, floats * 4]);
});
