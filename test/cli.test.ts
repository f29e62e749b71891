/** The command line's own behaviour: `--version`, and one line (not the help text) for an unknown flag. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alexnetBin } from '@alexnet-mp/coordinator';
import { alexnet } from './helpers.js';

const run = (...args: string[]) => spawnSync(process.execPath, [alexnetBin, ...args], { encoding: 'utf8', timeout: 60_000 });

test('--version prints the package version', (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const r = run('--version');
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), version);
});

for (const [args, line] of [
  [['launch', '--bach', '8'], 'alexnet: unknown option --bach (did you mean --batch?); --help lists them'],
  [['summary', 'runs/none', '--jsn'], 'alexnet: unknown option --jsn (did you mean --json?); --help lists them'],
  // a misspelt required option is named as unknown, not reported as the required one missing
  [['coordinator', '--workerz', '127.0.0.1:1,127.0.0.1:2'], 'alexnet: unknown option --workerz (did you mean --workers?); --help lists them'],
  [['params', '--preset', 'tiny', '--zzzzzzzz'], 'alexnet: unknown option --zzzzzzzz; --help lists them'],
] as const) {
  test(`an unknown flag is one line naming it and the closest valid one, exit 2: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2);
    t.is(r.stdout, '');
    t.is(r.stderr, `${line}\n`);
  });
}

for (const [args, line] of [
  [['launch', '--batch', '16', '--micro-batches', '3'], 'alexnet: --micro-batches 3: 3 micro-batches do not divide the batch of 16 images (divisors: 1, 2, 4, 8, 16) (--batch 16)'],
  [['launch', '--micro-batches', '0'], 'alexnet: --micro-batches 0: give a whole number >= 1 that divides --batch, or auto'],
  [['launch', '--micro-batches=-2'], 'alexnet: --micro-batches -2: give a whole number >= 1 that divides --batch, or auto'],
  [['launch', '--micro-batches', 'many'], 'alexnet: --micro-batches many: give a whole number >= 1 that divides --batch, or auto'],
  [['launch', '--micro-batches', '32'], 'alexnet: --micro-batches 32: 32 micro-batches is more than the batch of 16 images (--batch 16)'],
  [['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--batch', '8', '--micro-batches', '6'], 'alexnet: --micro-batches 6: 6 micro-batches do not divide the batch of 8 images (divisors: 1, 2, 4, 8) (--batch 8)'],
] as const) {
  test(`a bad --micro-batches is one line, exit 2, before anything starts: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.is(r.stdout, '');
    t.is(r.stderr, `${line}\n`);
  });
}

for (const [args, line] of [
  [['launch', '--threads', '0'], 'alexnet: --threads must be a whole number 1..1024, got 0'],
  [['launch', '--threads', '2000'], 'alexnet: --threads must be a whole number 1..1024, got 2000'],
  [['worker', '--tower', '0', '--threads', '1.5'], 'alexnet: --threads must be a whole number 1..1024, got 1.5'],
  [['worker', '--tower', '0', '--threads', '2000'], 'alexnet: --threads must be a whole number 1..1024, got 2000'],
] as const) {
  test(`a bad --threads is one line, exit 2, before anything starts: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.is(r.stdout, '');
    t.is(r.stderr, `${line}\n`);
  });
}

// what yargs itself refuses (a choice, a missing argument or command, a word for a number): one line, not the help text
for (const [args, line] of [
  [['launch', '--preset', 'huge'], 'alexnet: --preset huge: choose paper, cifar, tiny'],
  [['launch', '--eval-views', 'five'], 'alexnet: --eval-views five: choose centre, ten'],
  [['worker'], 'alexnet: --tower is required; alexnet worker --help says more'],
  [['export', '--run', 'runs/none'], 'alexnet: --out is required; alexnet export --help says more'],
  [['summary'], 'alexnet: missing <run> (usage: alexnet summary <run> [options]); alexnet summary --help says more'],
  [['predict'], 'alexnet: missing <images..> (usage: alexnet predict <images..> [options]); alexnet predict --help says more'],
  [['lanch'], 'alexnet: unknown command lanch (did you mean launch?); alexnet --help lists the commands'],
  [['inspect', 'kernals'], 'alexnet: unknown command inspect kernals (did you mean kernels?); alexnet inspect --help lists the commands'],
  [['inspect'], 'alexnet: name what to inspect: kernels, activations, predictions or neighbours; alexnet inspect --help says more'],
  [['features'], 'alexnet: --out is required; alexnet features --help says more'],
  [['compare'], 'alexnet: missing <a> <b> (usage: alexnet compare <a> <b> [options]); alexnet compare --help says more'],
  [['compare', 'runs/a'], 'alexnet: missing <b> (usage: alexnet compare <a> <b> [options]); alexnet compare --help says more'],
  [['launch', '--run-dir', '', '--steps', '3'], 'alexnet: --run-dir needs a value'],
  [['dashboard'], 'alexnet: missing <run> (usage: alexnet dashboard <run> [options]); alexnet dashboard --help says more'],
  [['launch', '--batch', 'abc'], 'alexnet: --batch abc: give a number'],
  [['launch', '--lr=fast'], 'alexnet: --lr fast: give a number'],
  [['worker', '--tower', '0', '--port', 'abc'], 'alexnet: --port abc: give a number'],
  [['launch', '--batch'], 'alexnet: --batch needs a value'],
  [['launch', '--data', '--steps', '2'], 'alexnet: --data needs a value'],
  [['launch', '--checkpoint-minutes', '-1'], 'alexnet: --checkpoint-minutes must be a number of minutes >= 0 (0: off), got -1'],
  [['launch', '--momentum', '5'], "alexnet: --momentum must be below 1 (the paper's is 0.9), got 5"],
  [['launch', '--steps', '3', '--steps', '5'], 'alexnet: --steps is given twice (3 and 5): give it once'],
  [['predict', '--top=1', '--top', '2', 'x.jpg'], 'alexnet: --top is given twice (1 and 2): give it once'],
  [['predict', '--json', 'a.jpg', '--json', 'b.jpg'], 'alexnet: --json is given twice: give it once'],
  [['--versoin'], 'alexnet: unknown option --versoin (did you mean --version?); --help lists them'],
  [['--', 'summary'], 'alexnet: name a command before --: alexnet --help lists them'],
  [['summary', '-run'], 'alexnet: unknown options -run; --help lists them; a file or folder named -run is written ./-run (or after --)'],
  // after `--`, a word that starts with a dash is the command's operand
  [['summary', '--', '-run'], 'alexnet: -run: no such run folder'],
  [['verify', '--', '-nope'], 'alexnet: -nope: no such file or folder'],
  [['export', '--run', '-run', '--out', 'x.safetensors'], "alexnet: --run needs a value (one that starts with '-' is written --run=-run)"],
  [['certs', '--out', '/nonexistent-alexnet-certs', '--names', 'ca-key,worker0'], 'alexnet: "ca-key" is a CA file\'s name (ca.pem, ca-key.pem): choose another certificate name'],
  [['certs', '--out', '/nonexistent-alexnet-certs', '--names', 'coordinator-key,coordinator'], 'alexnet: "coordinator-key" is the name of coordinator\'s key file (coordinator-key.pem): choose another certificate name'],
  [['inspect', 'kernels', '--coordinator', '127.0.0.1:1', '--backend', 'cpu'], "alexnet: --backend is for --run or --model: a running coordinator's workers compute on their own devices"],
  [['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--run-id', 'a b'], 'alexnet: --run-id "a b": give 1..128 printable ASCII characters without spaces'],
  [['certs', '--out', '/nonexistent-alexnet-certs', '--add-names'], 'alexnet: --add-names signs with the CA in /nonexistent-alexnet-certs, which has no ca.pem or ca-key.pem: make the CA first (alexnet certs --out /nonexistent-alexnet-certs) or give the folder that holds it'],
] as const) {
  test(`a command line yargs refuses is one line, exit 2: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.is(r.stdout, '');
    t.is(r.stderr, `${line}\n`);
  });
}

// a number is written in decimal: what JavaScript's Number() also reads (0x10 as 16, Infinity, " " as 0) is refused
for (const [args, line] of [
  [['launch', '--steps', '0x10'], 'alexnet: --steps 0x10: give a decimal number'],
  [['launch', '--steps=0b1'], 'alexnet: --steps 0b1: give a decimal number'],
  [['launch', '--batch', '0o20'], 'alexnet: --batch 0o20: give a decimal number'],
  [['launch', '--seed', '0XDEADBEEF'], 'alexnet: --seed 0XDEADBEEF: give a decimal number'],
  [['launch', '--evalEvery', '0x10'], 'alexnet: --eval-every 0x10: give a decimal number'],
  [['launch', '--steps', 'Infinity'], 'alexnet: --steps Infinity: give a number'],
  [['launch', '--lr', 'NaN'], 'alexnet: --lr NaN: give a number'],
  [['launch', '--lr', '1e400'], 'alexnet: --lr 1e400: give a finite number'],
  [['launch', '--steps', ' '], 'alexnet: --steps " ": give a number'],
  [['launch', '--steps', ' 16 '], 'alexnet: --steps " 16 ": give a number'],
  [['launch', '--steps='], 'alexnet: --steps needs a value'],
  [['launch', '--steps', '3', '--batch', '0x10'], 'alexnet: --batch 0x10: give a decimal number'],
  // yargs reads --no-NAME of a number option as 0
  [['launch', '--no-steps'], 'alexnet: --no-steps: --steps takes a number, not on or off'],
  // an option's name in capitals is no option (yargs matches names as written); the lower-case one is suggested
  [['summary', 'runs/x', '--JSON'], 'alexnet: unknown option --JSON (did you mean --json?); --help lists them'],
  [['export', '--run', 'runs/x', '--OUT', 'x.safetensors'], 'alexnet: unknown option --OUT (did you mean --out?); --help lists them'],
  [['launch', '--Steps', '5'], 'alexnet: unknown option --Steps (did you mean --steps?); --help lists them'],
  [['worker', '--tower', '0', '--port', '0x1f90'], 'alexnet: --port 0x1f90: give a decimal number'],
  [['predict', '--top', '0x2', 'x.jpg'], 'alexnet: --top 0x2: give a decimal number'],
  [['certs', '--out', '/nonexistent-alexnet-certs', '--days', 'Infinity'], 'alexnet: --days Infinity: give a number'],
] as const) {
  test(`a number not written in decimal is one line naming it, exit 2: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.is(r.stdout, '');
    t.is(r.stderr, `${line}\n`);
  });
}

// yargs reads --no-NAME of an option that takes a value as false: a stack trace or an odd refusal later
for (const [args, line] of [
  [['launch', '--no-data'], 'alexnet: --no-data: --data takes a value, not on or off'],
  [['launch', '--no-run-dir', '--steps', '1'], 'alexnet: --no-run-dir: --run-dir takes a value, not on or off'],
  [['params', '--no-preset'], 'alexnet: --no-preset: --preset takes a value, not on or off'],
  [['predict', '--no-model', 'x.jpg'], 'alexnet: --no-model: --model takes a value, not on or off'],
] as const) {
  test(`--no-NAME of an option that takes a value is one line, exit 2: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.is(r.stdout, '');
    t.is(r.stderr, `${line}\n`);
  });
}

test('a folder that cannot be made is one line, exit 2, never a loop: certs --out and a Slurm task\'s --run-dir under /proc or under a file', (t) => {
  for (const [args, env, line] of [
    [['certs', '--out', '/proc/alexnet-x'], {}, 'alexnet: cannot make the certificates folder /proc/alexnet-x: no such file or folder (ENOENT)'],
    [['certs', '--out', '/etc/hostname/certs'], {}, 'alexnet: cannot make the certificates folder /etc/hostname/certs: a part of the path is a file, not a folder (ENOTDIR)'],
    [['slurm', '--run-dir', '/proc/alexnet-x'], { SLURM_PROCID: '2', SLURM_NTASKS: '3', SLURM_STEP_NUM_TASKS: '3', SLURM_JOB_ID: '99', SLURM_STEP_ID: '0' }, 'alexnet: cannot make the run directory /proc/alexnet-x: no such file or folder (ENOENT)'],
  ] as const) {
    const r = spawnSync(process.execPath, [alexnetBin, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr, `${line}\n`);
  }
});

test('a decimal number is taken with a sign, a point or an exponent (--lr 1e-4): alexnet launch with nothing to train', (t) => {
  const r = run('launch', '--steps', '0', '--lr', '1e-4', '--weight-decay', '5E-4', '--momentum', '.9', '--seed', '+3', '--checkpoint-minutes', '0.5', '--batch', '16.0', '--eval-every=-0');
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '[launch] nothing to do: --steps 0\n');
});

// a flag given twice, in either form, is refused as any option given twice is (the last would win without a word)
for (const [args, line] of [
  [['params', '--json', '--json'], 'alexnet: --json is given twice: give it once'],
  [['params', '--json', '--no-json'], 'alexnet: --json is given twice (--json and --no-json): give it once'],
  [['params', '--no-json', '--json'], 'alexnet: --json is given twice (--no-json and --json): give it once'],
  [['params', '--no-json', '--no-json'], 'alexnet: --no-json is given twice: give it once'],
  [['params', '--json=true', '--no-json'], 'alexnet: --json is given twice (--json=true and --no-json): give it once'],
  [['params', '--json', 'false', '--json'], 'alexnet: --json is given twice (--json false and --json): give it once'],
  [['launch', '--decay-biases', '--no-decay-biases'], 'alexnet: --decay-biases is given twice (--decay-biases and --no-decay-biases): give it once'],
  [['launch', '--no-queue-steps', '--queue-steps'], 'alexnet: --queue-steps is given twice (--no-queue-steps and --queue-steps): give it once'],
  // the camelCase spelling yargs also takes is the same option
  [['launch', '--decayBiases', '--no-decay-biases'], 'alexnet: --decay-biases is given twice (--decayBiases and --no-decay-biases): give it once'],
  [['launch', '--eval-every', '1', '--evalEvery', '2'], 'alexnet: --eval-every is given twice (1 and 2): give it once'],
] as const) {
  test(`a flag given twice is one line naming it, exit 2: alexnet ${args.join(' ')}`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.is(r.stdout, '');
    t.is(r.stderr, `${line}\n`);
  });
}

test('a flag given once, in either form, is taken; an alias is the option itself; an option that takes several values may come again', async (t) => {
  t.is(run('params', '--no-json').status, 0);
  t.is(run('params', '--json', 'false').status, 0);
  const { givenTwiceLine } = await import('../packages/coordinator/src/cli/failure-line.js');
  const known = { key: { names: true, n: true, force: true, f: true }, array: ['names'], boolean: ['force', 'f'], alias: { names: ['n'], force: ['f'] } };
  t.is(givenTwiceLine(known, ['--names', 'a', '--names', 'b', '-n', 'c']), undefined);
  t.is(givenTwiceLine(known, ['--force', '-f']), '--force is given twice (--force and -f): give it once');
  t.is(givenTwiceLine(known, ['-f', '--no-force']), '--force is given twice (-f and --no-force): give it once');
  t.is(givenTwiceLine(known, ['-f', '-f']), '-f is given twice: give it once');
});

test('alexnet alone lists the commands', (t) => {
  const r = run();
  t.is(r.status, 2);
  t.regex(r.stderr, /Commands:[\s\S]*alexnet launch[\s\S]*alexnet: name a command/);
});

test('--help lists every command with the usage and description its module registers (from command-list.ts: no module loaded for the list)', async (t) => {
  const { COMMAND_LIST, INSPECT_SUBCOMMANDS } = await import('../packages/coordinator/src/cli/command-list.js');
  // each module FILE-command.ts exports its command as fileCommand (export-metrics: exportMetricsCommand)
  const modules: Record<string, { command?: unknown; describe?: unknown }> = {};
  for (const name of Object.keys(COMMAND_LIST)) {
    const m = (await import(`../packages/coordinator/src/cli/${name}-command.js`)) as Record<string, { command?: unknown; describe?: unknown }>;
    modules[name] = m[`${name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())}Command`]!;
  }
  t.is(readdirSync(new URL('../packages/coordinator/src/cli/', import.meta.url)).filter((f) => f.endsWith('-command.ts')).length, Object.keys(COMMAND_LIST).length, 'every command module is listed');
  for (const [name, listed] of Object.entries(COMMAND_LIST)) t.like(modules[name], listed, name);
  const { inspectSubcommands } = await import('../packages/coordinator/src/cli/inspect-command.js');
  t.deepEqual(inspectSubcommands.map((c) => c.command), [...INSPECT_SUBCOMMANDS]);
  const r = run('--help');
  t.is(r.status, 0, r.stderr);
  for (const { command, describe } of Object.values(COMMAND_LIST)) {
    t.true(r.stdout.includes(`alexnet ${command}`), command);
    // yargs wraps the description over lines: compared without the line breaks and indentation
    t.true(r.stdout.replace(/\s+/g, ' ').includes(describe.slice(0, 60)), describe);
  }
  // a command named after an option still runs as itself (every module is loaded then)
  const late = run('--preset', 'tiny', 'params');
  t.is(late.status, 0, late.stderr);
  t.regex(late.stdout, /conv1/);
});

test("params --model: the file's own line, then its preset's table; a missing file is one line", (t) => {
  const r = run('params', '--model', 'models/cifar10.safetensors');
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^models\/cifar10\.safetensors \(preset cifar, step \d+ of run \S+\)$/);
  t.regex(lines[1]!, /^preset cifar: [\d,]+ parameters/);
  t.regex(r.stdout, /^conv3 +conv +3x3 \/1 pad 1 +both towers /m);
  const bad = run('params', '--model', 'models/none.safetensors');
  t.is(bad.status, 2);
  t.is(bad.stderr, 'alexnet: --model models/none.safetensors: no such file\n');
  // a preset that is not the file's is refused, not ignored; the file's own is fine
  const other = run('params', '--model', 'models/cifar10.safetensors', '--preset', 'paper');
  t.is(other.status, 2);
  t.is(other.stderr, "alexnet: --preset paper: models/cifar10.safetensors is a model of preset cifar; leave out --preset (the table is the file's)\n");
  t.is(run('params', '--model', 'models/cifar10.safetensors', '--preset', 'cifar').status, 0);
});

test('a token file other users can read is warned about once, with the chmod that mends it; one of mode 600 is not', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alexnet-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const open = path.join(dir, 'open');
  writeFileSync(open, 'a-token-of-the-cluster-1234\n', { mode: 0o644 });
  chmodSync(open, 0o644);
  // a coordinator reads its token before it looks for its workers (none here)
  const coordinator = () => run('coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--token-file', open, '--connect-timeout', '1');
  const r = coordinator();
  t.is(r.status, 2, r.stderr);
  t.deepEqual(r.stderr.split('\n').filter((l) => /warning/.test(l)), [`alexnet: warning: the token file ${open} can be read by other users (mode 644): chmod 600 ${open}`]);
  t.regex(r.stderr, /authentication: a shared token/);
  chmodSync(open, 0o600);
  t.notRegex(coordinator().stderr, /warning/);
});

test('inspect with options but no sub-command says to name one, not that its options are unknown', (t) => {
  const r = run('inspect', '--out', 'x.png');
  t.is(r.status, 2);
  t.is(r.stderr, 'alexnet: name what to inspect before its options: alexnet inspect kernels|activations|predictions|neighbours --out x.png; alexnet inspect --help says more\n');
});

test('a TLS private key other users can read is warned about, with the chmod that mends it', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'alexnet-tls-key-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.is(run('certs', '--out', dir).status, 0);
  const key = path.join(dir, 'coordinator-key.pem');
  const coordinator = () => run('coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--tls', dir, '--connect-timeout', '1');
  t.notRegex(coordinator().stderr, /warning/, 'certs writes keys of mode 600');
  chmodSync(key, 0o644);
  const r = coordinator();
  t.deepEqual(r.stderr.split('\n').filter((l) => /warning/.test(l)), [`alexnet: warning: the private key ${key} can be read by other users (mode 644): chmod 600 ${key}`]);
});

test("inspect neighbours' help lists only what it takes: not --coordinator nor the credentials a coordinator asks for", (t) => {
  const r = run('inspect', 'neighbours', '--help');
  t.is(r.status, 0, r.stderr);
  t.notRegex(r.stdout, /^ {2,8}--(coordinator|tls(-\w+)?|token(-file)?) /m);
  t.regex(r.stdout, /^ {2,8}--features /m);
});

test('an ALEXNET_* setting the kernels would refuse at the first step is refused when a worker or launch starts, in one line', async (t) => {
  for (const [args, env, want] of [
    [['worker', '--tower', '0', '--port', '0'], { ALEXNET_POOL_PER_KERNEL: 'maybe' }, 'alexnet: ALEXNET_POOL_PER_KERNEL=maybe: give 1 (on) or 0 (off)'],
    [['worker', '--tower', '1', '--port', '0'], { ALEXNET_WASM_THREAD_CHOICE: 'fast' }, 'alexnet: ALEXNET_WASM_THREAD_CHOICE=fast: give measure (the default) or size'],
    [['launch', '--steps', '1'], { ALEXNET_WEBGPU_GEMM: 'fast' }, 'alexnet: ALEXNET_WEBGPU_GEMM=fast: expected rows, quad or scalar'],
    [['launch', '--steps', '1'], { ALEXNET_DAWN_POLL: 'sometimes' }, 'alexnet: ALEXNET_DAWN_POLL=sometimes: give paced (the default) or spin'],
  ] as [string[], Record<string, string>, string][]) {
    const p = alexnet(args, { env: { ...process.env, ...env } });
    const { code } = await p.exited;
    t.is(code, 2, args.join(' '));
    t.deepEqual(p.stderr, [want], args.join(' '));
  }
});
