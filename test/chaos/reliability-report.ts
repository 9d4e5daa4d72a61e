// Rewrites the generated section of RELIABILITY.md from test/chaos/last-run.json, so the figures
// there are always what the suite measured. Run by the suite's root hook, or by hand:
//   node dist/test/chaos/reliability-report.js

import { readFileSync, writeFileSync } from 'node:fs';
import prettier from 'prettier';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LAST_RUN, type LastRun, type ScenarioRecord } from './record.js';

export const RELIABILITY = fileURLToPath(new URL('../../../RELIABILITY.md', import.meta.url));
const BEGIN = '<!-- chaos:last-run:begin (generated from test/chaos/last-run.json; do not edit) -->';
const END = '<!-- chaos:last-run:end -->';

function sum(s: ScenarioRecord, pick: (r: ScenarioRecord['runs'][number]) => number | undefined): string {
  let n = 0;
  let any = false;
  for (const r of s.runs) {
    const v = pick(r);
    if (v !== undefined) {
      n += v;
      any = true;
    }
  }
  return any ? String(n) : '–';
}

export function renderSection(doc: LastRun): string {
  const lines = [
    BEGIN,
    '',
    `Last run: ${doc.finishedAt}, ${doc.runsPerScenario} run(s) per scenario (\`CHAOS_RUNS\`).`,
    'Figures are summed over the runs of each scenario; `totals` come from `edgegw queue inspect --json`.',
    '',
    '| scenario | runs | passed | kills | reconnects | committed rec | delivered rec | dropped rec | quarantined rec | queued rec | acked (broker) | dups (worst/allowed) | unexplained gaps |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of doc.scenarios) {
    const passed = s.runs.filter((r) => r.ok).length;
    const worst = Math.max(0, ...s.runs.map((r) => r.figures?.worstEpochDuplicates ?? 0));
    const allowed = Math.max(0, ...s.runs.map((r) => r.figures?.allowedPerEpoch ?? 0));
    lines.push(
      `| ${s.name} | ${s.runs.length} | ${passed} | ${sum(s, (r) => r.figures?.kills)} | ${sum(s, (r) =>
        r.figures === null ? undefined : Math.max(0, r.figures.epochs - 1),
      )} | ${sum(s, (r) => r.figures?.totals?.committedRecords)} | ${sum(s, (r) => r.figures?.totals?.deliveredRecords)} | ${sum(
        s,
        (r) => r.figures?.totals?.droppedRecords,
      )} | ${sum(s, (r) => r.figures?.totals?.quarantinedRecords)} | ${sum(s, (r) => r.figures?.queuedRecords)} | ${sum(
        s,
        (r) => r.figures?.ackedRecords,
      )} | ${sum(s, (r) => r.figures?.duplicates)} (${worst}/${allowed}) | ${sum(s, (r) => r.figures?.unexplained)} |`,
    );
  }
  const failed = doc.scenarios.flatMap((s) =>
    s.runs.filter((r) => !r.ok).map((r) => `- ${s.name}, run ${r.run}: ${firstLines(r.failure ?? '')}`),
  );
  lines.push('', failed.length === 0 ? 'Every run passed.' : 'Failed runs:', ...failed, '', END);
  return lines.join('\n');
}

function firstLines(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.trim().startsWith('figures:'))
    .slice(0, 4)
    .map((l) => l.trim())
    .join(' ')
    .replace(/\|/g, '\\|')
    .slice(0, 400);
}

/** Formats as `npm run check` expects (the repo's prettier config), so generated files pass it. */
export async function formatted(file: string, text: string): Promise<string> {
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(text, { ...options, filepath: file });
}

export async function rewriteReliability(doc: LastRun): Promise<void> {
  const text = readFileSync(RELIABILITY, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  const section = renderSection(doc);
  const next =
    a >= 0 && b > a
      ? text.slice(0, a) + section + text.slice(b + END.length)
      : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(RELIABILITY, await formatted(RELIABILITY, next));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await rewriteReliability(JSON.parse(readFileSync(LAST_RUN, 'utf8')) as LastRun);
}
