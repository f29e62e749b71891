/**
 * The README's "A first run, in 5 minutes" block, run as written: each command is read from README.md (so the
 * test follows the README), with only the long settings made short (2000 steps -> 4), the fixed names made
 * local (the run directory, the dashboard port, the image) and `npm start --` run as what it is
 * (`node bin/alexnet.mjs launch`).
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const cat = path.join(root, '..', 'shared', 'datasets', 'cifar10', 'test', 'cat', '0000.jpg');

/** The commands of the README's section `heading`: its first sh block, comments dropped. */
function commandsOf(heading: string): string[] {
  const at = readme.indexOf(`## ${heading}`);
  if (at < 0) throw new Error(`README.md has no section "${heading}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))![1]!;
  return block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l.length > 0);
}

test('the README\'s first-run commands work as written (with short settings)', async (t) => {
  const cmds = commandsOf('A first run, in 5 minutes');
  t.is(cmds.length, 5, cmds.join('\n'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-readme-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const local = (c: string) =>
    c
      .replace(/^npm start( --)?/, 'node bin/alexnet.mjs launch')
      .replace(/runs\/c1/g, path.join(dir, 'c1'))
      .replace('--steps 2000 --eval-every 50', '--steps 4 --eval-every 2')
      // port 0: the OS picks a free one when the dashboard binds (a port found free before could be taken by then)
      .replace('--ui-port 8080', '--ui-port 0')
      .replace('photo.jpg', cat);
  const expect: RegExp[] = [
    /\[launch\] run finished; stopping the workers/,
    /\[launch\] run finished; stopping the workers/,
    /steps done: 5 of 5 steps/,
    /\[launch\] dashboard: http:\/\/127\.0\.0\.1:[1-9]\d*\//,
    /\d+\.\d%\s+cat/,
  ];
  for (const [i, c] of cmds.entries()) {
    const argv = local(c).split(/\s+/);
    t.is(argv[0], 'node', `README command ${i + 1} runs node: ${c}`);
    const r = spawnSync(process.execPath, argv.slice(1), { cwd: root, encoding: 'utf8', timeout: 300_000 });
    const out = `${r.stdout}${r.stderr}`;
    t.is(r.status, 0, `${c}\n${out.slice(-3000)}`);
    t.regex(out, expect[i]!, c);
    t.notRegex(out, /internal error|\n\s+at /, c);
    t.log(`ok: ${c}`);
  }
  t.true(fs.existsSync(path.join(dir, 'c1', 'metrics.jsonl')), 'the cifar run kept its metrics');
});
