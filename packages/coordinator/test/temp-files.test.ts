/** temp-files.ts: a short command's temporary files go when a signal stops it; the signal still ends the process as its own. */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const module = fileURLToPath(new URL('../src/temp-files.ts', import.meta.url));

/** A process that makes `files`, has them removed on a signal (keeping the ones named in `kept` once made), says "ready" and waits. */
function child(files: string[], kept: string[], exitCode: number | null = null) {
  const code = `
    import fs from 'node:fs';
    const { removeOnSignal } = await import(${JSON.stringify(module)});
    const files = ${JSON.stringify(files)};
    const kept = new Set(${JSON.stringify(kept)});
    for (const f of files) {
      fs.writeFileSync(f, 'partial');
      const keep = removeOnSignal(f);
      if (kept.has(f)) keep();
    }
    process.stdout.write('ready\\n');
    ${exitCode === null ? 'setInterval(() => {}, 1000);' : `setTimeout(() => process.exit(${exitCode}), 100);`}
  `;
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve) => p.stdout.once('data', () => resolve()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
  return { p, ready, ended };
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  test(`${signal}: the temporary files are removed and the process ends by ${signal}; a file no longer temporary stays`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-temp-files-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const [a, b, c] = ['.a.npy.1.tmp', '.b.jsonl.1.tmp', 'c.npy'].map((n) => path.join(dir, n));
    const { p, ready, ended } = child([a!, b!, c!], [c!]);
    await ready;
    p.kill(signal);
    t.deepEqual(await ended, { code: null, signal });
    t.deepEqual(fs.readdirSync(dir), ['c.npy']);
  });
}

test('a file kept (renamed into place) before the signal stays; the signal ends the process as its own', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-temp-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const a = path.join(dir, 'a.npy');
  const { p, ready, ended } = child([a], [a]);
  await ready;
  p.kill('SIGINT');
  t.deepEqual(await ended, { code: null, signal: 'SIGINT' });
  t.true(fs.existsSync(a));
});

test('an exit before the file is kept (process.exit: a reader of the output gone) removes it too', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-temp-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [a, b] = ['.a.npy.1.tmp', 'b.npy'].map((n) => path.join(dir, n));
  const { ended } = child([a!, b!], [b!], 141);
  t.deepEqual(await ended, { code: 141, signal: null });
  t.deepEqual(fs.readdirSync(dir), ['b.npy']);
});

test('writeWhole replaces a file whole, a symbolic link\'s target rather than the link, writes to a device directly, and leaves no temporary file', async (t) => {
  const { writeWhole } = (await import(module)) as typeof import('../src/temp-files.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-write-whole-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.csv');
  fs.writeFileSync(file, 'old\n');
  writeWhole(file, 'new\n');
  t.is(fs.readFileSync(file, 'utf8'), 'new\n');
  const link = path.join(dir, 'link.csv');
  fs.symlinkSync(file, link);
  writeWhole(link, 'through the link\n');
  t.true(fs.lstatSync(link).isSymbolicLink());
  t.is(fs.readFileSync(file, 'utf8'), 'through the link\n');
  writeWhole('/dev/null', 'nothing\n');
  // a folder that is not there: the error is thrown, nothing is left
  t.throws(() => writeWhole(path.join(dir, 'none', 'b.csv'), 'x'), { code: 'ENOENT' });
  t.deepEqual(fs.readdirSync(dir).sort(), ['a.csv', 'link.csv']);
});

test('an output named under /dev or /proc is written to, never replaced; this process\'s stdout and stderr by their descriptors', async (t) => {
  const { outputTarget, standardStream, writeWhole } = (await import(module)) as typeof import('../src/temp-files.js');
  for (const f of ['/dev/stdout', '/dev/null', '/proc/self/fd/1']) t.true(outputTarget(f).special, f);
  t.deepEqual([standardStream('/dev/stdout'), standardStream('/dev/fd/2'), standardStream('/proc/self/fd/1'), standardStream('/dev/null'), standardStream('out.csv')], [1, 2, 1, null, null]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-output-target-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.csv');
  fs.writeFileSync(file, 'x', { mode: 0o600 });
  t.deepEqual(outputTarget(file), { file: fs.realpathSync(file), special: false, mode: 0o600 });
  t.deepEqual(outputTarget(path.join(dir, 'new.csv')), { file: path.join(dir, 'new.csv'), special: false, mode: null });
  // a file replaced keeps its permissions
  writeWhole(file, 'y');
  t.is(fs.statSync(file).mode & 0o777, 0o600);
});

test('a signal while writeWhole writes ends the process once the file is whole (or not at all): never a temporary file left', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-write-signal-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'big.npy');
  const size = 48 << 20;
  // writes of 48 MiB, one after another: a signal is almost surely sent during one of them
  const code = `
    const { writeWhole } = await import(${JSON.stringify(module)});
    const data = new Uint8Array(${size}).fill(7);
    process.stdout.write('ready\\n');
    for (let i = 0; i < 40; i++) {
      writeWhole(${JSON.stringify(file)}, data);
      await new Promise((r) => setImmediate(r));
    }
  `;
  for (let round = 0; round < 3; round++) {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on('exit', (c, s) => resolve({ code: c, signal: s })));
    await new Promise<void>((resolve) => p.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 150 + 40 * round));
    p.kill('SIGINT');
    const end = await ended;
    t.true(end.signal === 'SIGINT' || end.code === 0, JSON.stringify(end));
    t.deepEqual(fs.readdirSync(dir), ['big.npy'], `round ${round}: ${JSON.stringify(end)}`);
    t.is(fs.statSync(file).size, size);
  }
});
