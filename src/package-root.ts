// Where the installed package's own files are (package.json, config/, hw-profiles/): the first
// folder above this module that holds package.json. The module is dist/src/package-root.js when
// compiled by tsc and a chunk of dist/bundle/ when bundled (bundle.mjs), so no fixed depth works.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The package's root folder. */
export function packageRoot(): string {
  if (root !== null) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return (root = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`edgegw: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** A path inside the package, e.g. packagePath('hw-profiles'). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
