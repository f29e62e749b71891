/**
 * examples/k8s/: every manifest parses and has the fields its kind needs; the pieces fit together (the headless
 * Service selects the StatefulSet's pods and is its serviceName, the coordinator dials the pods' DNS names on the
 * Service's port, every volume mount and claim exists); the containers' shell lines give each worker its tower
 * and the coordinator --resume once there is a checkpoint; every alexnet option they use exists. Where kubectl
 * reaches a cluster, `kubectl apply --dry-run=client` checks them too (without one it cannot: it needs the
 * server's schema).
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { alexnetBin } from '@alexnet-mp/coordinator';
import { LOCK_OWNER_ENV } from '../packages/coordinator/src/run-dir.js';

const dir = fileURLToPath(new URL('../examples/k8s/', import.meta.url));

type Obj = Record<string, unknown>;
const obj = (v: unknown, where: string): Obj => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: expected a mapping, got ${JSON.stringify(v)}`);
  return v as Obj;
};
const arr = (v: unknown, where: string): unknown[] => {
  if (!Array.isArray(v)) throw new Error(`${where}: expected a list, got ${JSON.stringify(v)}`);
  return v;
};
const str = (v: unknown, where: string): string => {
  if (typeof v !== 'string' || v === '') throw new Error(`${where}: expected a string, got ${JSON.stringify(v)}`);
  return v;
};
const int = (v: unknown, where: string): number => {
  if (!Number.isInteger(v)) throw new Error(`${where}: expected an integer, got ${JSON.stringify(v)}`);
  return v as number;
};

interface Manifest {
  file: string;
  kind: string;
  name: string;
  doc: Obj;
}

const KINDS: Record<string, string> = { Service: 'v1', PersistentVolumeClaim: 'v1', StatefulSet: 'apps/v1', Job: 'batch/v1' };
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      const doc = obj(d.toJS(), file);
      const kind = str(doc.kind, `${file}: kind`);
      if (!(kind in KINDS)) throw new Error(`${file}: kind ${kind} is not one the examples use`);
      if (doc.apiVersion !== KINDS[kind]) throw new Error(`${file}: ${kind} has apiVersion ${JSON.stringify(doc.apiVersion)}, not ${KINDS[kind]}`);
      const name = str(obj(doc.metadata, `${file}: metadata`).name, `${file}: metadata.name`);
      if (!DNS_LABEL.test(name) || name.length > 63) throw new Error(`${file}: ${name} is not a DNS label`);
      out.push({ file, kind, name, doc });
    }
  }
  return out;
}

interface Container {
  name: string;
  image: string;
  args: string[];
  ports: Map<string, number>;
  mounts: string[];
  /** Each environment variable: its value, or `fieldRef:PATH` for one from the downward API. */
  env: Map<string, string>;
}

/** A pod template's containers and volumes, checked field by field. */
function podSpec(template: unknown, where: string): { labels: Obj; containers: Container[]; init: { name: string; image: string; args: string[] }[]; volumes: Map<string, Obj>; spec: Obj } {
  const t = obj(template, where);
  const labels = obj(obj(t.metadata, `${where}.metadata`).labels, `${where}.metadata.labels`);
  const spec = obj(t.spec, `${where}.spec`);
  const volumes = new Map<string, Obj>();
  for (const [i, v] of arr(spec.volumes ?? [], `${where}.spec.volumes`).entries()) {
    const vol = obj(v, `${where}.spec.volumes[${i}]`);
    const sources = Object.keys(vol).filter((k) => k !== 'name');
    if (sources.length !== 1) throw new Error(`${where}: volume ${String(vol.name)} has ${sources.length} sources`);
    const secret = vol.secret === undefined ? null : obj(vol.secret, `${where}: volume ${String(vol.name)}.secret`);
    if (secret && secret.defaultMode !== undefined && !(int(secret.defaultMode, 'defaultMode') >= 0 && (secret.defaultMode as number) <= 0o777)) throw new Error(`${where}: defaultMode out of range`);
    volumes.set(str(vol.name, `${where}.spec.volumes[${i}].name`), vol);
  }
  const containers = arr(spec.containers, `${where}.spec.containers`).map((c, i): Container => {
    const w = `${where}.spec.containers[${i}]`;
    const co = obj(c, w);
    const ports = new Map<string, number>();
    for (const p of arr(co.ports ?? [], `${w}.ports`)) {
      const po = obj(p, `${w}.ports`);
      const n = int(po.containerPort, `${w}.ports.containerPort`);
      if (n < 1 || n > 65535) throw new Error(`${w}: containerPort ${n}`);
      if (po.name !== undefined) ports.set(str(po.name, `${w}.ports.name`), n);
    }
    const mounts = arr(co.volumeMounts ?? [], `${w}.volumeMounts`).map((m) => str(obj(m, `${w}.volumeMounts`).name, `${w}.volumeMounts.name`));
    for (const m of mounts) if (!volumes.has(m)) throw new Error(`${w}: mounts volume ${m}, which the pod does not have`);
    const env = new Map<string, string>();
    for (const e of arr(co.env ?? [], `${w}.env`)) {
      const eo = obj(e, `${w}.env`);
      const name = str(eo.name, `${w}.env.name`);
      if (eo.valueFrom !== undefined) env.set(name, `fieldRef:${str(obj(obj(eo.valueFrom, `${w}.env.${name}.valueFrom`).fieldRef, `${w}.env.${name}.valueFrom.fieldRef`).fieldPath, `${w}.env.${name}.fieldPath`)}`);
      else env.set(name, str(eo.value, `${w}.env.${name}.value`));
    }
    return { name: str(co.name, `${w}.name`), image: str(co.image, `${w}.image`), args: [...arr(co.command ?? [], `${w}.command`), ...arr(co.args ?? [], `${w}.args`)].map((a) => str(a, `${w}.args`)), ports, mounts, env };
  });
  const init = arr(spec.initContainers ?? [], `${where}.spec.initContainers`).map((c, i) => {
    const co = obj(c, `${where}.spec.initContainers[${i}]`);
    return { name: str(co.name, 'initContainers.name'), image: str(co.image, 'initContainers.image'), args: [...arr(co.command ?? [], 'command'), ...arr(co.args ?? [], 'args')].map((a) => str(a, 'initContainers.args')) };
  });
  return { labels, containers, init, volumes, spec };
}

const matches = (selector: Obj, labels: Obj) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** What a container's `sh -c LINE` runs, with `exec node bin/alexnet.mjs` replaced by printing its arguments. */
function shellArgv(line: string, env: Record<string, string>, replace: [string, string][] = []): string[] {
  let script = line.replace('exec node bin/alexnet.mjs', "printf '%s\\n'");
  for (const [a, b] of replace) script = script.split(a).join(b);
  const r = spawnSync('/bin/sh', ['-c', script], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sh -c ${script}: ${r.stderr}`);
  return r.stdout.trimEnd().split('\n');
}

test('the Kubernetes examples: each manifest well-formed, and the Service, StatefulSet, Job, claim and secret fit together', async (t) => {
  const all = manifests();
  const one = (kind: string) => {
    const m = all.filter((x) => x.kind === kind);
    t.is(m.length, 1, `one ${kind}`);
    return m[0]!;
  };
  const svc = one('Service');
  const sts = one('StatefulSet');
  const job = one('Job');
  const pvc = one('PersistentVolumeClaim');

  // the headless Service: no cluster IP, the workers' pods, a port named after theirs
  const svcSpec = obj(svc.doc.spec, 'Service.spec');
  t.is(svcSpec.clusterIP, 'None');
  const svcPort = obj(arr(svcSpec.ports, 'Service.spec.ports')[0], 'Service port');
  const port = int(svcPort.port, 'Service port');

  // the StatefulSet: two replicas, governed by the Service, pods it selects
  const stsSpec = obj(sts.doc.spec, 'StatefulSet.spec');
  t.is(stsSpec.replicas, 2);
  t.is(stsSpec.serviceName, svc.name);
  const workers = podSpec(stsSpec.template, 'StatefulSet.template');
  t.true(matches(obj(obj(stsSpec.selector, 'selector').matchLabels, 'matchLabels'), workers.labels), 'the StatefulSet selects its own pods');
  t.true(matches(obj(svcSpec.selector, 'Service.selector'), workers.labels), 'the Service selects the workers');
  const worker = workers.containers[0]!;
  t.is(worker.ports.get(str(svcPort.targetPort, 'targetPort')), port, "the Service's targetPort is the worker's port");
  t.deepEqual(worker.mounts, ['token']);

  // the Job: restarts on failure, its claim and secret exist
  const jobPod = podSpec(obj(job.doc.spec, 'Job.spec').template, 'Job.template');
  t.true(['OnFailure', 'Never'].includes(str(jobPod.spec.restartPolicy, 'restartPolicy')));
  t.is(obj(jobPod.volumes.get('runs')!.persistentVolumeClaim, 'claim').claimName, pvc.name);
  const secrets = [...jobPod.volumes.values(), ...workers.volumes.values()].filter((v) => v.secret).map((v) => obj(v.secret, 'secret').secretName);
  t.deepEqual(new Set(secrets), new Set(['alexnet-token']), 'one secret, the token (docs/cluster.md: kubectl create secret)');

  // worker N runs tower N; the coordinator dials both pods by their DNS names on the Service's port
  for (const n of [0, 1]) {
    const argv = shellArgv(worker.args.at(-1)!, { HOSTNAME: `${sts.name}-${n}` });
    t.deepEqual(argv.slice(0, 3), ['worker', '--tower', String(n)]);
    t.is(argv[argv.indexOf('--port') + 1], String(port));
  }
  const coordLine = jobPod.containers[0]!.args.at(-1)!;
  // the Job's uid names the run folder's lock: the Job's next pod, on another node, takes it over
  t.is(jobPod.containers[0]!.env.get(LOCK_OWNER_ENV), "fieldRef:metadata.labels['batch.kubernetes.io/controller-uid']");
  const runs = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-k8s-'));
  t.teardown(() => fs.rmSync(runs, { recursive: true, force: true }));
  const first = shellArgv(coordLine, {}, [['/runs', runs]]);
  t.is(first[0], 'coordinator');
  t.is(first[first.indexOf('--workers') + 1], `${sts.name}-0.${svc.name}:${port},${sts.name}-1.${svc.name}:${port}`);
  t.is(first[first.indexOf('--run-dir') + 1], `${runs}/cifar10`);
  t.false(first.includes('--resume'));
  // a restarted pod with a checkpoint in the run folder continues from it
  fs.mkdirSync(path.join(runs, 'cifar10', 'checkpoints'), { recursive: true });
  fs.writeFileSync(path.join(runs, 'cifar10', 'checkpoints', 'step-000000200.safetensors'), '');
  const again = shellArgv(coordLine, {}, [['/runs', runs]]);
  t.is(again[again.indexOf('--resume') + 1], `${runs}/cifar10`);
  t.false(again.includes('--run-dir'));

  // the init container waits for exactly those two addresses, and its script runs: here against two local ports
  const wait = jobPod.init.find((c) => c.name === 'wait-for-workers');
  t.truthy(wait, 'the Job waits for the workers to listen');
  t.deepEqual(wait!.args.slice(0, 2), ['node', '-e']);
  const script = wait!.args[2]!;
  const listed = /const workers = \[([^\]]*)\]/.exec(script)?.[1]?.split(',').map((x) => x.trim().replace(/^'|'$/g, ''));
  t.deepEqual(listed, first[first.indexOf('--workers') + 1]!.split(','));
  const servers = await Promise.all([0, 1].map(() => new Promise<net.Server>((resolve) => { const srv = net.createServer((c) => c.destroy()); srv.listen(0, '127.0.0.1', () => resolve(srv)); })));
  t.teardown(() => servers.forEach((srv) => srv.close()));
  let local = script;
  listed!.forEach((w, i) => (local = local.replace(`'${w}'`, `'127.0.0.1:${(servers[i]!.address() as net.AddressInfo).port}'`)));
  const waited = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn(process.execPath, ['-e', local], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code, out }));
  });
  t.is(waited.code, 0, waited.out);
  t.is(waited.out.trim(), 'both workers listen');

  // and kubectl's own check, where it reaches a cluster (it needs the API server's schema, even for a client-side dry run)
  const version = spawnSync('kubectl', ['version', '--request-timeout=5s'], { encoding: 'utf8', timeout: 30_000 });
  if (version.error || version.status !== 0) {
    t.log(`kubectl ${version.error ? 'is not installed' : 'reaches no cluster'} here: the checks above stand in for kubectl apply --dry-run=client`);
    return;
  }
  const r = spawnSync('kubectl', ['apply', '--dry-run=client', '-f', dir], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /statefulset\.apps\/alexnet-worker created \(dry run\)/);
});

test('every alexnet option the Kubernetes examples use exists', (t) => {
  const all = manifests();
  for (const [kind, command] of [['StatefulSet', 'worker'], ['Job', 'coordinator']] as const) {
    const m = all.find((x) => x.kind === kind)!;
    const line = podSpec(obj(m.doc.spec, kind).template, kind).containers[0]!.args.at(-1)!;
    const help = spawnSync(process.execPath, [alexnetBin, command, '--help'], { encoding: 'utf8', timeout: 60_000 });
    t.is(help.status, 0, help.stderr);
    const used = [...line.matchAll(/(?<=\s)--([a-z][a-z-]*)/g)].map((x) => x[1]!);
    t.true(used.length > 3, line);
    for (const o of used) t.regex(help.stdout, new RegExp(`--${o}\\b`), `${kind}: alexnet ${command} has no --${o}`);
  }
});
