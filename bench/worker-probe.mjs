// Looks inside a running worker process (or any Node.js process) without restarting it: opens its
// inspector (SIGUSR1, port 9229 unless given), prints the V8 heap of its main thread and of every
// worker thread (gpu.js's webasm kernel threads), and with a number of seconds, a CPU profile of the
// main thread for that long: "(garbage collector)" is its time in GC. WPROF=S profiles the worker
// threads for S seconds too; NOWORKERS=1 skips them. The inspector is closed again at the end.
// How the CIFAR-10 run's slowdown was measured (README, "Known problems"):
//   node --experimental-websocket bench/worker-probe.mjs $(pgrep -f 'alexnet.mjs worker --tower 0') 20
const usage = 'usage: node --experimental-websocket bench/worker-probe.mjs PID [PROFILE_SECONDS [INSPECTOR_PORT]]';
const refuse = (line) => {
  process.stderr.write(`worker-probe.mjs: ${line}\n`);
  process.exit(2);
};
if (process.argv[2] === '--help' || process.argv[2] === '-h') {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
// Node.js 20 has WebSocket behind a flag (22 has it by default)
if (typeof WebSocket === 'undefined') refuse(`this Node.js (${process.version}) has no WebSocket: run it with node --experimental-websocket (${usage})`);
const pid = Number(process.argv[2]);
const profileS = Number(process.argv[3] ?? 0);
const port = Number(process.argv[4] ?? 9229);
if (!Number.isInteger(pid) || pid <= 0) refuse(`give the process id of a running worker (${usage})`);
if (!(profileS >= 0)) refuse(`PROFILE_SECONDS ${process.argv[3]}: give a number of 0 or more`);
if (!Number.isInteger(port) || port <= 0 || port > 65535) refuse(`INSPECTOR_PORT ${process.argv[4]}: give a port number`);
try {
  process.kill(pid, 'SIGUSR1');
} catch (e) {
  refuse(`cannot signal process ${pid}: ${e.code === 'ESRCH' ? 'no such process' : e.message}`);
}
let list;
for (let i = 0; i < 50; i++) {
  await new Promise((r) => setTimeout(r, 200));
  try { list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json(); break; } catch {}
}
if (!list) refuse(`no inspector answered on port ${port} (is ${pid} a node process of this user?)`);
const ws = new WebSocket(list[0].webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener('open', r));
let id = 0;
const pending = new Map();
const workers = [];
const workerPending = new Map();
ws.addEventListener('message', (ev) => {
  const m = JSON.parse(ev.data);
  if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); return; }
  if (m.method === 'NodeWorker.attachedToWorker') workers.push(m.params);
  if (m.method === 'NodeWorker.receivedMessageFromWorker') {
    const inner = JSON.parse(m.params.message);
    const key = m.params.sessionId + ':' + inner.id;
    if (inner.id && workerPending.has(key)) { workerPending.get(key)(inner); workerPending.delete(key); }
  }
});
const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
let wid = 0;
const sendWorker = (sessionId, method, params = {}) => new Promise((r) => {
  const i = ++wid; workerPending.set(sessionId + ':' + i, r);
  send('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id: i, method, params }) });
});
const expr = `JSON.stringify((() => { const v8 = require('v8'); const h = v8.getHeapStatistics(); const m = process.memoryUsage(); const mb = (x) => Math.round(x / 2 ** 20); return { heapUsedMB: mb(h.used_heap_size), heapTotalMB: mb(h.total_heap_size), externalMB: mb(h.external_memory), rssMB: mb(m.rss), arrayBuffersMB: mb(m.arrayBuffers) }; })())`;
const ev = async (f, e) => { const r = await f('Runtime.evaluate', { expression: e, includeCommandLineAPI: true, returnByValue: true }); return r.result?.result?.value ?? JSON.stringify(r.result ?? r.error); };
console.log('main', await ev(send, expr));
if (!process.env.NOWORKERS) { await send('NodeWorker.enable', { waitForDebuggerOnStart: false });
await new Promise((r) => setTimeout(r, 1000)); }
console.log('workers', workers.length);
const summary = {};
for (const w of workers) {
  const v = await ev((m, p) => sendWorker(w.sessionId, m, p), expr);
  summary[v] = (summary[v] ?? 0) + 1;
}
for (const [k, n] of Object.entries(summary)) console.log(`${n} x ${k}`);
if (profileS > 0) {
  await send('Profiler.enable');
  await send('Profiler.start');
  await new Promise((r) => setTimeout(r, profileS * 1000));
  const { result } = await send('Profiler.stop');
  const self = new Map();
  const nodes = new Map(result.profile.nodes.map((n) => [n.id, n]));
  const dt = result.profile.timeDeltas; const samples = result.profile.samples;
  for (let i = 0; i < samples.length; i++) {
    const n = nodes.get(samples[i]); const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0));
  }
  const tot = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`main thread profile ${profileS}s, total sampled ${(tot / 1e6).toFixed(1)} s`);
  for (const [k, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(us / 1e3).toFixed(0).padStart(8)} ms  ${k}`);
}
if (process.env.WPROF) {
  for (const w of workers) { await sendWorker(w.sessionId, 'Profiler.enable'); await sendWorker(w.sessionId, 'Profiler.start'); }
  await new Promise((r) => setTimeout(r, Number(process.env.WPROF) * 1000));
  const self = new Map(); let tot = 0;
  for (const w of workers) {
    const r = await sendWorker(w.sessionId, 'Profiler.stop');
    const p = r.result.profile; const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < p.samples.length; i++) {
      const n = nodes.get(p.samples[i]); const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-1)}`;
      if (k.startsWith('(idle)')) continue;
      self.set(k, (self.get(k) ?? 0) + (p.timeDeltas[i] ?? 0)); tot += p.timeDeltas[i] ?? 0;
    }
  }
  console.log(`worker threads profile ${process.env.WPROF}s: busy ${(tot / 1e6).toFixed(1)} s`);
  for (const [k, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${(us / 1e3).toFixed(0).padStart(8)} ms  ${k}`);
}
if (!process.env.NOWORKERS) await send('NodeWorker.disable').catch(() => {});
await ev(send, `require('inspector').close()`).catch(() => {});
ws.close();
process.exit(0);
