/**
 * How long a crossing tensor takes to reach an idle peer while the sender computes on:
 * `node --import tsx bench/stream-latency.ts [--count 500] [--busy 2] [--bytes 4096] [--pin]`.
 * A receiver process serves Peer.Stream (acknowledging each tensor, as a worker does); this process sends
 * `--count` tensors on the exchange stream, each followed by one turn of the event loop (as a crossing
 * gives it), then `--busy` ms of computing on this thread, then 3 ms idle. Prints the time from each send
 * to the receiver's handler, p10 / median / p90 (both processes on this machine: one clock). `--pin` puts
 * the sender on the first CPU this process may use and the receiver on the second (`worker --cpus`).
 */
import * as grpc from '@grpc/grpc-js';
import { fork } from 'node:child_process';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { allowedCpus, pinThisProcess } from '../packages/coordinator/src/cpu-affinity.js';
import { ExchangeStream, flowControlOptions, protocol, type ExchangeAck, type ExchangeRequest } from '@alexnet-mp/worker';

const now = () => performance.timeOrigin + performance.now();
const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

if (process.argv[2] === '--receiver') {
  // the receiver: acknowledges every tensor at once and reports when it arrived (the send time rides in run_id)
  if (process.argv[3]) pinThisProcess([Number(process.argv[3])]);
  const server = new grpc.Server(flowControlOptions);
  server.addService(protocol().Peer.service, {
    Stream: (call: grpc.ServerDuplexStream<ExchangeRequest, ExchangeAck>) =>
      call.on('data', (req: ExchangeRequest) => {
        process.send!({ step: req.step, ms: now() - Number(req.run_id) });
        call.write({ step: req.step, point: req.point, direction: req.direction, code: grpc.status.OK, message: '', micro_batch: 0 });
      }),
  } as grpc.UntypedServiceImplementation);
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => process.send!({ port }));
} else {
  const argv = await yargs(hideBin(process.argv))
    .usage('node --import tsx bench/stream-latency.ts [options]\n\nThe time a tensor on the exchange stream takes to reach an idle peer while the sender computes.')
    .option('count', { type: 'number', default: 500, describe: 'tensors sent (the first 20 warm up and are not counted)' })
    .option('busy', { type: 'number', default: 2, describe: 'ms the sender computes after each send' })
    .option('bytes', { type: 'number', default: 4096, describe: 'tensor size' })
    .option('pin', { type: 'boolean', default: false, describe: 'sender and receiver on CPUs of their own' })
    .strict()
    .help()
    .parseAsync();
  const cpus = allowedCpus() ?? [];
  if (argv.pin && cpus.length < 2) throw new Error('--pin needs two CPUs');
  // the receiver first: it would inherit this process's CPU
  const receiver = fork(new URL(import.meta.url).pathname, ['--receiver', argv.pin ? String(cpus[1]) : ''], { execArgv: process.execArgv });
  if (argv.pin) pinThisProcess([cpus[0]!]);
  const port = await new Promise<number>((resolve) => receiver.once('message', (m: { port: number }) => resolve(m.port)));
  const arrivals: number[] = [];
  receiver.on('message', (m: { step: number; ms: number }) => m.step >= 20 && arrivals.push(m.ms));
  const client = new (protocol().Peer)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), flowControlOptions);
  const stream = new ExchangeStream(client);
  const signal = new AbortController().signal;
  const data = Buffer.alloc(argv.bytes);
  for (let i = 0; i < argv.count; i++) {
    void stream.send({ run_id: String(now()), step: i, point: 'pool2', direction: 'FORWARD', from_tower: 0, tensor: { shape: [argv.bytes / 4], data } }, 10_000, signal);
    await new Promise((resolve) => setImmediate(resolve));
    busy(argv.busy);
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  arrivals.sort((a, b) => a - b);
  const q = (f: number) => arrivals[Math.floor(f * (arrivals.length - 1))]!.toFixed(2);
  process.stdout.write(`${arrivals.length} tensors of ${argv.bytes} bytes, the sender computing ${argv.busy} ms after each, ${argv.pin ? `pinned (sender CPU ${cpus[0]}, receiver CPU ${cpus[1]})` : 'not pinned'}: send to arrival p10 ${q(0.1)} ms, median ${q(0.5)} ms, p90 ${q(0.9)} ms\n`);
  stream.close();
  client.close();
  receiver.kill();
  process.exit(0);
}
