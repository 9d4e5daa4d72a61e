#!/usr/bin/env node
// Thin launcher: `npm run build` compiles the CLI to dist/src/ and bundles it into dist/bundle/
// (scripts/bundle.mjs: fewer, larger modules, a smaller daemon). The bundle runs when it is there;
// EDGEGW_UNBUNDLED=1 runs dist/src/ (tests that inspect which packages a command loads use it).
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/bundle/main.js', import.meta.url);
const unbundled = process.env.EDGEGW_UNBUNDLED === '1' || !existsSync(bundle);
const entry = unbundled ? '../dist/src/cli/main.js' : bundle.href;
import(entry).catch((err) => {
  process.stderr.write(`edgegw: cannot start (${err && err.message}); run \`npm run build\` first\n`);
  process.exit(70);
});
