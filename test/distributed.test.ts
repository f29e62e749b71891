/**
 * The two-worker run against the one-process oracle, with real worker
 * processes and real gRPC on loopback; and what crosses between the workers.
 *
 * The workers reach each other through counting TCP proxies in this process,
 * so the bytes on the wire are measured independently of the workers' own
 * accounting. Twice: with the step tensors on one Peer.Stream a run (both
 * workers have it), and with one Exchange call a tensor (tower 1 started
 * with --no-exchange-stream, as a worker without the stream: tower 0 sees
 * its Hello list no "exchange-stream" and calls Exchange).
 */
import test from 'ava';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { GroupedTrainer, crossingSizes, initTowerParams, tiny, type SgdHyper } from '@alexnet-mp/core';
import { ExchangeStream, inputNormalisation, normaliseImages, protocol, trafficTotals, type CrossingTraffic, type StatusReply } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource, type StepMetrics } from '@alexnet-mp/coordinator';
import { maxRelError, startWorker } from './helpers.js';

const B = 32;
const STEPS = 4;
const SEED = 7;
// a strong decay, on the biases too, so that the workers' use of decay_biases shows in the comparison with the oracle
const hyper: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.05, decayBiases: true };

interface Proxy {
  address: string;
  target: string;
  /** Bytes from the caller to the target, and back. */
  up: number;
  down: number;
  close(): void;
}

async function countingProxy(): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  const p: Proxy = { address: '', target: '', up: 0, down: 0, close: () => {} };
  const server = net.createServer((client) => {
    const [host, port] = [p.target.slice(0, p.target.lastIndexOf(':')), Number(p.target.slice(p.target.lastIndexOf(':') + 1))];
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d) => {
      p.up += d.length;
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      p.down += d.length;
      client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  p.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  p.close = () => {
    for (const s of sockets) s.destroy();
    server.close();
  };
  return p;
}

interface Fixture {
  metrics: StepMetrics[];
  oracleLosses: number[];
  oracle: GroupedTrainer;
  coordinator: Coordinator;
  status: [StatusReply, StatusReply];
  /** Wire bytes per step, 0->1 and 1->0, from the proxies (steps 1.. only: step 0 may carry connection setup). */
  wire: { from0: number; from1: number }[];
  /** The workers' own addresses. */
  workers: [string, string];
}

type Mode = 'stream' | 'unary';
const MODES: readonly Mode[] = ['stream', 'unary'];
const fixtures = new Map<Mode, Promise<Fixture>>();
const cleanups: (() => Promise<void> | void)[] = [];
const onCleanup = (f: () => Promise<void> | void) => cleanups.push(f);
test.after.always(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** One run per mode shared by the tests of this file (whichever runs first starts it). */
function setUp(mode: Mode): Promise<Fixture> {
  let fixture = fixtures.get(mode);
  if (fixture) return fixture;
  fixture = (async () => {
    // worker 0 reaches worker 1 through p01, worker 1 reaches worker 0 through p10
    const [p01, p10] = [await countingProxy(), await countingProxy()];
    const [w0, w1] = await Promise.all([startWorker(onCleanup, 0, ['--peer', p01.address, '--max-batch', String(B)]), startWorker(onCleanup, 1, ['--peer', p10.address, '--max-batch', String(B), ...(mode === 'unary' ? ['--no-exchange-stream'] : [])])]);
    p01.target = w1.address;
    p10.target = w0.address;
    const source = new SyntheticSource(tiny, SEED);
    const coordinator = new Coordinator({ spec: tiny, workers: [w0.address, w1.address], batch: B, seed: SEED, hyper, source });
    await coordinator.start();
    const metrics: StepMetrics[] = [];
    const wire: { from0: number; from1: number }[] = [];
    for (let s = 0; s < STEPS; s++) {
      const before = { from0: p01.up + p10.down, from1: p10.up + p01.down };
      metrics.push(await coordinator.step(await source.batch(s, B)));
      wire.push({ from0: p01.up + p10.down - before.from0, from1: p10.up + p01.down - before.from1 });
    }
    const status = (await Promise.all(coordinator.clients.map((c) => c.status()))) as [StatusReply, StatusReply];

    const oracle = await GroupedTrainer.create({ spec: tiny, backend: 'webasm', batch: B, seed: SEED, hyper, fallback: { onFallback: 'throw' } });
    const oracleLosses: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      const b = await source.batch(s, B);
      oracleLosses.push((await oracle.trainStep({ images: normaliseImages(b.images, inputNormalisation(tiny)), labels: Float32Array.from(b.labels) })).loss);
    }
    onCleanup(() => {
      coordinator.close();
      p01.close();
      p10.close();
      oracle.destroy();
    });
    return { metrics, oracleLosses, oracle, coordinator, status, wire, workers: [w0.address, w1.address] };
  })();
  fixtures.set(mode, fixture);
  return fixture;
}

for (const mode of MODES) {
  test.serial(`${mode}: ${STEPS} steps of the tiny preset on two workers give the one-process trainer's losses and every weight and momentum`, async (t) => {
    const f = await setUp(mode);
    t.log(`losses: two workers ${f.metrics.map((m) => m.loss.toFixed(6)).join(' ')}; one process ${f.oracleLosses.map((l) => l.toFixed(6)).join(' ')}`);
    for (let s = 0; s < STEPS; s++) {
      const rel = Math.abs(f.metrics[s]!.loss - f.oracleLosses[s]!) / Math.abs(f.oracleLosses[s]!);
      t.true(rel < 1e-5, `step ${s}: loss ${f.metrics[s]!.loss} vs ${f.oracleLosses[s]} (relative error ${rel.toExponential(2)})`);
    }
    let compared = 0;
    let worst = 0;
    for (const tower of [0, 1] as const) {
      const remote = await f.coordinator.clients[tower].parameters(true);
      const local = f.oracle.params[tower];
      t.deepEqual([...remote.keys()], [...local.keys()], `tower ${tower} has the same layers`);
      for (const [name, lp] of local) {
        const rp = remote.get(name)!;
        for (const k of ['w', 'b', 'vw', 'vb'] as const) {
          const e = maxRelError(rp[k]!, lp[k]);
          worst = Math.max(worst, e);
          compared += lp[k].length;
          t.true(e < 1e-5, `tower ${tower} ${name}.${k}: relative error ${e.toExponential(2)}`);
        }
      }
    }
    t.log(`${compared} parameter and momentum values compared, worst relative error ${worst.toExponential(2)}`);
    // the run did train: every weight tensor moved from its initialisation
    for (const tower of [0, 1] as const) {
      for (const [name, init] of initTowerParams(tiny, tower, SEED)) t.true(maxRelError(f.oracle.params[tower].get(name)!.w, init.w) > 1e-4, `tower ${tower} ${name} moved`);
    }
    t.true(f.status.every((s) => s.steps_done === STEPS && s.state === 'READY' && s.backend === 'webasm'));
  });

  test.serial(`${mode}: each worker's step time splits into compute, the exchange waited for and the update; the hidden exchange fits in it`, async (t) => {
    const f = await setUp(mode);
    for (const m of f.metrics) {
      for (const w of m.workers) {
        const what = `step ${m.step}, tower ${w.tower}`;
        t.true(Math.abs(w.compute_ms + w.exchange_ms + w.update_ms - w.total_ms) < 1e-6 * w.total_ms + 1e-9, `${what}: compute + waited + update = total`);
        // the update of each segment but the first runs while its input gradient crosses: some exchange is hidden
        t.true(w.exchange_hidden_ms > 0, `${what}: exchange hidden ${w.exchange_hidden_ms} ms`);
        t.true(w.exchange_hidden_ms + w.exchange_ms <= w.total_ms, `${what}: hidden ${w.exchange_hidden_ms} + waited ${w.exchange_ms} <= total ${w.total_ms} ms`);
        t.true(w.exchange_hidden_ms <= w.compute_ms + w.update_ms + 1e-9, `${what}: hidden behind compute or the update`);
      }
    }
    for (const tower of [0, 1] as const) {
      const timing = f.status[tower].last_step_timing;
      t.true(timing.exchange_hidden_ms > 0 && timing.exchange_hidden_ms + timing.exchange_ms <= timing.total_ms, `Status of tower ${tower} reports the last step's hidden exchange`);
    }
  });

  test.serial(`${mode}: each step line and Status say the worker process's resident memory`, async (t) => {
    const f = await setUp(mode);
    for (const m of f.metrics) {
      for (const w of m.workers) t.true(w.rss_mib !== undefined && w.rss_mib > 10 && w.rss_mib < 64 * 1024, `step ${m.step}, tower ${w.tower}: ${w.rss_mib} MiB resident`);
    }
    for (const tower of [0, 1] as const) t.true(Number(f.status[tower].rss_bytes) > 10 * 2 ** 20, `Status of tower ${tower}: ${f.status[tower].rss_bytes} bytes resident`);
  });

  test.serial(`${mode}: per step exactly the crossing tensors cross: pool2, pool5, fc6 both ways, fc7 from tower 1 only, and their gradients back`, async (t) => {
    const f = await setUp(mode);
    const sizes = crossingSizes(tiny, B);
    t.deepEqual(sizes.map((s) => s.name), ['pool2', 'pool5', 'fc6', 'fc7']);
    const bytes = Object.fromEntries(sizes.map((s) => [s.name, 4 * s.floats]));
    // what tower t sends at each point: its output forward; the peer's slice of its input gradient back.
    // fc8 (and the loss) run on tower 0 only: tower 1 sends fc7 forward, tower 0 sends d(fc7) slice 1 back,
    // and nothing else crosses at fc7 (tower 0's fc7 and its gradient stay on tower 0).
    const expected = (tower: 0 | 1): CrossingTraffic[] =>
      sizes.map(({ name }) => {
        const both = name !== 'fc7';
        const fwdSent = both || tower === 1 ? bytes[name]! : 0;
        const fwdRecv = both || tower === 0 ? bytes[name]! : 0;
        const bwdSent = both || tower === 0 ? bytes[name]! : 0;
        const bwdRecv = both || tower === 1 ? bytes[name]! : 0;
        return {
          point: name,
          forward_sent_bytes: fwdSent,
          forward_received_bytes: fwdRecv,
          backward_sent_bytes: bwdSent,
          backward_received_bytes: bwdRecv,
          messages_sent: (fwdSent > 0 ? 1 : 0) + (bwdSent > 0 ? 1 : 0),
          messages_received: (fwdRecv > 0 ? 1 : 0) + (bwdRecv > 0 ? 1 : 0),
        };
      });
    for (const m of f.metrics) {
      t.deepEqual(m.traffic[0], expected(0), `step ${m.step}, tower 0`);
      t.deepEqual(m.traffic[1], expected(1), `step ${m.step}, tower 1`);
      const [p2, p5, f6, f7] = sizes.map((s) => 4 * s.floats) as [number, number, number, number];
      const oneWay = 2 * (p2 + p5 + f6) + f7; // both towers' pool2, pool5, fc6; tower 1's fc7
      t.is(m.crossing_bytes, 2 * oneWay, `step ${m.step}: forward ${oneWay} bytes plus the same back`);
    }
    // Status gives the last step and the run's totals
    for (const tower of [0, 1] as const) {
      t.deepEqual(f.status[tower].last_step_traffic, expected(tower));
      t.deepEqual(
        f.status[tower].run_traffic,
        expected(tower).map((e) => ({
          ...e,
          forward_sent_bytes: STEPS * e.forward_sent_bytes,
          forward_received_bytes: STEPS * e.forward_received_bytes,
          backward_sent_bytes: STEPS * e.backward_sent_bytes,
          backward_received_bytes: STEPS * e.backward_received_bytes,
          messages_sent: STEPS * e.messages_sent,
          messages_received: STEPS * e.messages_received,
        })),
      );
    }
    // On the wire (measured by the proxies, independently of the workers' counts): the counted payload plus
    // the framing of 7 tensors each way. Unary calls: protobuf tags, gRPC prefix, HTTP/2 headers and frames,
    // about 145 bytes a call on loopback; 200 bytes a call leaves room for header variation, not for one more
    // tensor plus its call. On the stream: no headers a tensor, its message and the acknowledgement of one of
    // the peer's (about 95 bytes together); at most 120, and more than that with unary calls.
    const sent = [trafficTotals(expected(0)).sent, trafficTotals(expected(1)).sent];
    const calls = [trafficTotals(expected(0)).messagesSent, trafficTotals(expected(1)).messagesSent];
    const smallest = Math.min(...Object.values(bytes));
    const perCall = mode === 'stream' ? 120 : 200;
    for (const [s, w] of f.wire.entries()) {
      if (s === 0) continue; // step 0 shares its packets with the connection's setup
      const over = [w.from0 - sent[0]!, w.from1 - sent[1]!];
      t.log(`step ${s}: wire bytes 0->1 ${w.from0} (tensor payload ${sent[0]}), 1->0 ${w.from1} (${sent[1]})`);
      for (const d of [0, 1]) {
        t.true(over[d]! >= 0 && over[d]! < perCall * calls[d]!, `from tower ${d}: ${over[d]} bytes of framing for ${calls[d]} calls`);
        t.true(over[d]! + smallest + 100 > perCall * calls[d]!, 'the bound would catch one more tensor');
        if (mode === 'unary') t.true(over[d]! > 120 * calls[d]!, `from tower ${d}: ${over[d]} bytes of framing: one call a tensor, not the stream`);
      }
    }
    if (mode === 'unary') {
      // the worker started with --no-exchange-stream answers a stream as a worker without it does
      const peer = new (protocol().Peer)(f.workers[1], grpc.credentials.createInsecure());
      const tensor = { shape: [1], data: Buffer.alloc(4) };
      const e = (await t.throwsAsync(new ExchangeStream(peer).send({ run_id: 'x', step: 0, point: 'pool2', direction: 'FORWARD', from_tower: 0, tensor }, 10_000, new AbortController().signal))) as grpc.ServiceError;
      peer.close();
      t.is(e.code, grpc.status.UNIMPLEMENTED);
      t.regex(e.details, /this worker takes crossing tensors by Peer\.Exchange only/);
    }
  });
}
