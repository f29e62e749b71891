/** Test helper (partial-decode.test.ts): decodes the listing in argv[2] (JSON) on this thread and kills itself at the first unreadable image. */
import { readFileSync } from 'node:fs';
import { decodeToCache, type DecodeOptions } from '../src/data/index.js';

const o = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as DecodeOptions;
await decodeToCache({ ...o, journalEvery: 10, onWarning: () => process.kill(process.pid, 'SIGKILL') });
