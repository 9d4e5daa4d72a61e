// Where Debian's libfaketime lives (package `faketime`; .ci/run installs it): tests that step a
// real process's wall clock preload it. The multi-threaded build, since Node runs threads.

import { existsSync } from 'node:fs';

const DIRS = ['x86_64-linux-gnu', 'aarch64-linux-gnu', 'arm-linux-gnueabihf'].map(
  (a) => `/usr/lib/${a}/faketime`,
);

/** The libfaketimeMT path; throws saying how to install it when it is missing. */
export function libfaketime(): string {
  for (const dir of DIRS) {
    const lib = `${dir}/libfaketimeMT.so.1`;
    if (existsSync(lib)) return lib;
  }
  throw new Error('libfaketime is missing: apt-get install faketime');
}
