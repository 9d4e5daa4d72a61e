#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
import('../dist/src/cli/main.js').catch((err) => {
  process.stderr.write(`edgegw: cannot start (${err && err.message}); run \`npm run build\` first\n`);
  process.exit(70);
});
