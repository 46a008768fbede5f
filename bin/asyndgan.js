#!/usr/bin/env node
// The `asyndgan` command. An installed package runs the compiled JavaScript in dist/; a source
// checkout (src/ present, tsx installed) runs the TypeScript directly, so it never runs a stale build.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/src/cli/main.js');
}
