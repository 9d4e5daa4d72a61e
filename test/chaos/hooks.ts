// Mocha root hooks for the chaos suite: at the end, write last-run.json and regenerate the
// figures section of RELIABILITY.md from it.

import { writeFileSync } from 'node:fs';
import { LAST_RUN, lastRun } from './record.js';
import { RUNS } from './scenario.js';
import { formatted, rewriteReliability } from './reliability-report.js';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    const doc = lastRun(RUNS);
    if (doc === null) return;
    writeFileSync(LAST_RUN, await formatted(LAST_RUN, JSON.stringify(doc)));
    await rewriteReliability(doc);
  },
};
