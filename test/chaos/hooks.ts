// Mocha root hooks for the chaos suite: at the end, write last-run.json and regenerate the
// figures section of RELIABILITY.md from it.

import { writeLastRun } from './record.js';
import { RUNS } from './scenario.js';
import { rewriteReliability } from './reliability-report.js';

export const mochaHooks = {
  afterAll(): void {
    const doc = writeLastRun(RUNS);
    if (doc !== null) rewriteReliability(doc);
  },
};
