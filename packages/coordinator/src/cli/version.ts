/** The application's version: the root package.json's, which `alexnet --version` prints. */
import { readFileSync } from 'node:fs';

export const packageVersion: string = (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
