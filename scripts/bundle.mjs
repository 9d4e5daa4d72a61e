// Bundles the compiled CLI (dist/src/cli/main.js) into dist/bundle/: one minified module per
// command (esbuild code splitting keeps the CLI's lazy imports lazy). `edgegw run` then loads a
// few large files instead of ~1,500 small ES modules, which saves ~8 MiB of the daemon's RSS
// (module records, sources, the loader's resolution caches): BENCHMARKS.md, section 5.
// Native addons stay in node_modules (external) and are loaded from there at run time.
//
//   node scripts/bundle.mjs        (part of `npm run build`)

import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/bundle`;

/** Packages with native code (or optional native helpers): resolved from node_modules at run time. */
const NATIVE = [
  'classic-level',
  'serialport',
  '@serialport/*',
  'onoff',
  'epoll',
  'unix-dgram',
  'bufferutil',
  'utf-8-validate',
];

/** modbus-serial's `require('serialport')` gets lazy-serialport.cjs (see there): loaded by RTU buses only. */
const lazySerialport = {
  name: 'lazy-serialport',
  setup(b) {
    b.onResolve({ filter: /^serialport$/ }, (args) =>
      /[\\/]node_modules[\\/]modbus-serial[\\/]/.test(args.importer)
        ? { path: `${root}scripts/lazy-serialport.cjs` }
        : undefined,
    );
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { main: `${root}dist/src/cli/main.js` },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  external: NATIVE,
  plugins: [lazySerialport],
  // CommonJS dependencies call require() for Node's own modules: give each chunk one.
  banner: {
    js: "import{createRequire as __edgegwRequire}from'node:module';const require=__edgegwRequire(import.meta.url);",
  },
  metafile: true,
  logLevel: 'warning',
});
// Which inputs each chunk holds: test/unit/cli/lazy-imports.test.ts checks run's chunks from it.
await writeFile(`${outdir}/meta.json`, JSON.stringify(result.metafile));
