// Renders the figures of a bench run (bench/last-run.json, written by `npm run bench`) into
// BENCHMARKS.md between its `<!-- bench:run -->` and `<!-- /bench:run -->` markers: the machine,
// the command and the table, so the text never quotes a figure the table does not hold.
// `node dist/bench/render.js [RESULT.json] [BENCHMARKS.md]`; `--check` fails when they disagree.

import { readFile, writeFile } from 'node:fs/promises';
import { Report, type Machine, type Row } from './report.js';

interface Run {
  machine: Machine;
  command: string;
  wallMs: number;
  rows: Row[];
}

const START = '<!-- bench:run -->';
const END = '<!-- /bench:run -->';

export function renderRun(run: Run): string {
  const report = new Report();
  report.rows.push(...run.rows);
  const m = run.machine;
  const failed = run.rows.filter((r) => r.verdict === 'FAIL');
  return [
    START,
    `Run on ${m.date.slice(0, 10)} (UTC): \`${run.command}\`, ${Math.round(run.wallMs / 1000)} s wall clock.`,
    `Machine: ${m.cpu}, ${m.memory} RAM, Node ${m.node}, tmpdir on \`${m.disk}\`.`,
    '',
    report.render(),
    '',
    // The verdicts are listed here, from the same rows, so the text below never has to state one.
    ...(failed.length === 0
      ? ['All targets of this run were met.']
      : [
          `${failed.length} target(s) of this run were not met:`,
          '',
          ...failed.map((r) => `- ${r.section}: ${r.figure} — ${r.value} (target ${r.target})`),
        ]),
    END,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const [resultFile = 'bench/last-run.json', docFile = 'BENCHMARKS.md'] = args.filter((a) => a !== '--check');
  const run = JSON.parse(await readFile(resultFile, 'utf8')) as Run;
  const doc = await readFile(docFile, 'utf8');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${docFile} has no ${START} … ${END} block`);
  const next = doc.slice(0, a) + renderRun(run) + doc.slice(b + END.length);
  if (check) {
    if (next !== doc) {
      console.error(`${docFile} does not match ${resultFile}: run node dist/bench/render.js`);
      process.exit(1);
    }
    return;
  }
  await writeFile(docFile, next);
  console.log(`wrote ${docFile} from ${resultFile}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
