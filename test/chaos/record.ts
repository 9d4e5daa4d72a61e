// The record of a chaos run: every scenario's runs, outcomes and invariant figures, written to
// test/chaos/last-run.json at the end, and the figures section of RELIABILITY.md regenerated
// from it (reliability-report.ts).

import { fileURLToPath } from 'node:url';
import type { Figures } from './invariant.js';

export const LAST_RUN = fileURLToPath(new URL('../../../test/chaos/last-run.json', import.meta.url));

export interface RunOutcome {
  run: number;
  ms: number;
  ok: boolean;
  failure: string | null;
  figures: Figures | null;
  notes: Record<string, number | string>;
}

export interface ScenarioRecord {
  name: string;
  guarantee: string;
  runs: RunOutcome[];
}

export interface LastRun {
  finishedAt: string;
  runsPerScenario: number;
  scenarios: ScenarioRecord[];
}

const scenarios = new Map<string, ScenarioRecord>();

export function recordRun(name: string, guarantee: string, outcome: RunOutcome): void {
  const s = scenarios.get(name) ?? { name, guarantee, runs: [] };
  s.runs.push(outcome);
  scenarios.set(name, s);
}

export function lastRun(runsPerScenario: number): LastRun | null {
  if (scenarios.size === 0) return null;
  const doc: LastRun = {
    finishedAt: new Date().toISOString(),
    runsPerScenario,
    scenarios: [...scenarios.values()],
  };
  return doc;
}
