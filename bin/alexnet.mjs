#!/usr/bin/env node
// The `alexnet` command: runs the TypeScript CLI through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../packages/coordinator/src/cli/main.ts');
