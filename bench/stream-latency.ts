/**
 * How long a crossing tensor takes to reach an idle peer while the sender computes on:
 * `node --import tsx bench/stream-latency.ts [--count 500] [--busy 2] [--bytes 4096] [--pin]`.
 * A receiver process serves Peer.Stream (acknowledging each tensor, as a worker does); this process sends
 * `--count` tensors on the exchange stream, each followed by one turn of the event loop (as a crossing
 * gives it), then `--busy` ms of computing on this thread, then 3 ms idle. Prints the time from each send
 * until the receiver's handler has the floats (read as a worker reads a crossing tensor: in place when they are
 * 4-byte aligned in the received buffer, else copied), p10 / median / p90 (both processes on this machine: one
 * clock), and how many were read in place. `--unaligned` sends with the stock serialiser instead of the
 * exchange stream's (packages/worker/src/aligned-exchange.ts). `--pin` puts
 * the sender on the first CPU this process may use and the receiver on the second (`worker --cpus`).
 * Large tensors (a paper crossing at batch 128 is 11 MB: `--bytes 11075584 --count 30 --busy 0`) are sent one at a
 * time: each after the one before was acknowledged, so that none waits behind another; the line then gives the
 * rate too. `--tcp`: the same bytes over a plain TCP socket between the same two processes (an 8-byte header with
 * the send time and the length, a one-byte acknowledgement), for what gRPC and HTTP/2 add to the wire.
 */
import * as grpc from '@grpc/grpc-js';
import { fork } from 'node:child_process';
import net from 'node:net';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import { allowedCpus, pinThisProcess } from '../packages/coordinator/src/cpu-affinity.js';
import { ExchangeStream, decodeTensor, flowControlOptions, protocol, type ExchangeAck, type ExchangeRequest } from '@alexnet-mp/worker';

const now = () => performance.timeOrigin + performance.now();
// messages of any --bytes (gRPC's default limit is 4 MiB; the workers size theirs to the model: protocol.ts maxMessageBytes)
const options: grpc.ChannelOptions = { ...flowControlOptions, 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };
const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

if (process.argv[2] === '--receiver') {
  // the receiver: acknowledges every tensor at once and reports when it arrived and was read as floats, as a
  // worker reads a crossing tensor (in place when aligned, else copied; the send time rides in run_id); it ends
  // with the sender (its channel closes however the sender ends, a crash included)
  process.on('disconnect', () => process.exit(0));
  if (process.argv[3]) pinThisProcess([Number(process.argv[3])]);
  const server = new grpc.Server(options);
  server.addService(protocol().Peer.service, {
    Stream: (call: grpc.ServerDuplexStream<ExchangeRequest, ExchangeAck>) =>
      call.on('data', (req: ExchangeRequest) => {
        const x = decodeTensor(req.tensor, undefined, true);
        process.send!({ step: req.step, ms: now() - Number(req.run_id), inPlace: x.buffer === req.tensor.data.buffer });
        call.write({ step: req.step, point: req.point, direction: req.direction, code: grpc.status.OK, message: '', micro_batch: 0 });
      }),
  } as grpc.UntypedServiceImplementation);
  // --tcp: each message is [send time f64][length u32][bytes], answered with one byte once all of it is here (and
  // joined into one buffer, as gRPC's decoder joins a message's frames)
  const tcp = net.createServer((c) => {
    c.setNoDelay(true);
    let parts: Buffer[] = [];
    let have = 0;
    let need = -1;
    let sentAt = 0;
    let step = 0;
    c.on('data', (d: Buffer) => {
      parts.push(d);
      have += d.length;
      while (have >= 12) {
        if (need < 0) {
          const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
          parts = [head];
          sentAt = head.readDoubleLE(0);
          need = 12 + head.readUInt32LE(8);
        }
        if (have < need) return;
        const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        process.send!({ step: step++, ms: now() - sentAt });
        c.write(Buffer.from([1]));
        const rest = all.subarray(need);
        parts = rest.length > 0 ? [rest] : [];
        have = rest.length;
        need = -1;
      }
    });
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => tcp.listen(0, '127.0.0.1', () => process.send!({ port, tcpPort: (tcp.address() as net.AddressInfo).port })));
} else {
  const argv = await benchArgs(yargs(hideBin(process.argv)), { count: 'count', busy: 'ms', bytes: 4 })
    .usage('node --import tsx bench/stream-latency.ts [options]\n\nThe time a tensor on the exchange stream takes to reach an idle peer while the sender computes.')
    .option('count', { type: 'number', default: 500, describe: 'tensors sent (the first 20, or a quarter when fewer than 80, warm up and are not counted)' })
    .option('busy', { type: 'number', default: 2, describe: 'ms the sender computes after each send' })
    .option('bytes', { type: 'number', default: 4096, describe: 'tensor size' })
    .option('pin', { type: 'boolean', default: false, describe: 'sender and receiver on CPUs of their own' })
    .option('tcp', { type: 'boolean', default: false, describe: 'a plain TCP socket instead of the exchange stream' })
    .option('unaligned', { type: 'boolean', default: false, describe: "the stock serialiser: the receiver copies the tensors whose floats are not 4-byte aligned in its buffer" })
    .strict()
    .help()
    .parseAsync();
  const cpus = allowedCpus() ?? [];
  const refuse = (line: string) => {
    process.stderr.write(`stream-latency.ts: ${line}\n`);
    process.exit(2);
  };
  if (argv.bytes % 4 !== 0) refuse(`--bytes ${argv.bytes}: give a multiple of 4 (the tensor's floats)`);
  if (argv.pin && cpus.length < 2) refuse('--pin needs two CPUs');
  // the receiver first: it would inherit this process's CPU; it goes with this process, however this one ends
  const receiver = fork(new URL(import.meta.url).pathname, ['--receiver', argv.pin ? String(cpus[1]) : ''], { execArgv: process.execArgv });
  process.on('exit', () => receiver.kill());
  if (argv.pin) pinThisProcess([cpus[0]!]);
  const { port, tcpPort } = await new Promise<{ port: number; tcpPort: number }>((resolve) => receiver.once('message', resolve));
  const arrivals: number[] = [];
  let inPlace = 0;
  const warm = Math.min(20, Math.floor(argv.count / 4));
  receiver.on('message', (m: { step: number; ms: number; inPlace?: boolean }) => {
    if (m.step < warm) return;
    arrivals.push(m.ms);
    if (m.inPlace) inPlace++;
  });
  // past 1 MiB a tensor is sent after the one before was acknowledged
  const oneAtATime = argv.bytes > 1 << 20;
  const client = new (protocol().Peer)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
  const stream = new ExchangeStream(client, { alignTensors: !argv.unaligned });
  const signal = new AbortController().signal;
  const data = Buffer.alloc(argv.bytes);
  const socket = argv.tcp ? net.connect(tcpPort, '127.0.0.1') : null;
  if (socket) await new Promise((resolve) => socket.once('connect', resolve)).then(() => socket.setNoDelay(true));
  const tcpAcks: (() => void)[] = [];
  socket?.on('data', (d: Buffer) => d.forEach(() => tcpAcks.shift()?.()));
  const sendTcp = (): Promise<void> => {
    const head = Buffer.alloc(12);
    head.writeDoubleLE(now(), 0);
    head.writeUInt32LE(argv.bytes, 8);
    socket!.write(head);
    socket!.write(data);
    return new Promise<void>((resolve) => tcpAcks.push(resolve));
  };
  for (let i = 0; i < argv.count; i++) {
    const sent = socket ? sendTcp() : stream.send({ run_id: String(now()), step: i, point: 'pool2', direction: 'FORWARD', from_tower: 0, tensor: { shape: [argv.bytes / 4], data } }, 60_000, signal);
    await new Promise((resolve) => setImmediate(resolve));
    if (oneAtATime) await sent;
    busy(argv.busy);
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  arrivals.sort((a, b) => a - b);
  const at = (f: number) => arrivals[Math.floor(f * (arrivals.length - 1))]!;
  const q = (f: number) => at(f).toFixed(2);
  process.stdout.write(`${arrivals.length} tensors of ${argv.bytes} bytes, the sender computing ${argv.busy} ms after each, ${argv.pin ? `pinned (sender CPU ${cpus[0]}, receiver CPU ${cpus[1]})` : 'not pinned'}, ${argv.tcp ? 'plain TCP' : `exchange stream (${argv.unaligned ? 'stock serialiser' : 'aligned'}; ${inPlace} of ${arrivals.length} read in place)`}: send to arrival p10 ${q(0.1)} ms, median ${q(0.5)} ms, p90 ${q(0.9)} ms${oneAtATime ? ` (${(argv.bytes / 1e6 / (at(0.5) / 1000)).toFixed(0)} MB/s at the median)` : ''}\n`);
  stream.close();
  client.close();
  socket?.destroy();
  receiver.kill();
  process.exit(0);
}
