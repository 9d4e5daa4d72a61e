// One chaos scenario = a mocha test that runs its body CHAOS_RUNS times, each on a fresh site, and
// ends every run with the invariant check. Outcomes go to the run record (last-run.json).

import { ChaosSite, type SiteSpec } from './harness.js';
import { checkInvariant, InvariantError, type Figures } from './invariant.js';
import { recordRun } from './record.js';

export const RUNS = Math.max(1, Number(process.env.CHAOS_RUNS ?? 2) || 2);

export interface ScenarioContext {
  site: ChaosSite;
  run: number;
  /** What the body did (kills, faults), for the record. */
  note: (key: string, value: number | string) => void;
}

export interface ScenarioOptions {
  /** Skip the invariant (the body asserts a refusal and checks what it needs itself). */
  invariant?: boolean;
}

/** Registers `name` as a mocha test running `body` RUNS times, each followed by the invariant. */
export function scenario(
  name: string,
  guarantee: string,
  spec: SiteSpec | (() => SiteSpec),
  body: (c: ScenarioContext) => Promise<void>,
  opts: ScenarioOptions = {},
): void {
  it(`${name} (×${RUNS})`, async function () {
    const failures: string[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const site = await ChaosSite.create(typeof spec === 'function' ? spec() : spec);
      const notes: Record<string, number | string> = {};
      const started = Date.now();
      let figures: Figures | null = null;
      let failure: string | null = null;
      try {
        await body({ site, run, note: (k, v) => (notes[k] = v) });
        if (opts.invariant !== false) figures = await checkInvariant(site);
      } catch (err) {
        failure = err instanceof Error ? err.message : String(err);
        if (err instanceof InvariantError) figures = err.figures;
      } finally {
        await site.cleanup();
      }
      recordRun(name, guarantee, {
        run,
        ms: Date.now() - started,
        ok: failure === null,
        failure,
        figures,
        notes,
      });
      if (failure !== null) failures.push(`run ${run}: ${failure}`);
    }
    if (failures.length > 0)
      throw new Error(`${name}: ${failures.length}/${RUNS} runs failed\n${failures.join('\n')}`);
  });
}
