// `edgegw decode [FILE|-]`: captured payloads → NDJSON rows on stdout (src/consumer/captured.ts
// says which inputs). A payload that does not decode is reported on stderr by its line and the
// others still print; the exit status is then 1.

import { readFile } from 'node:fs/promises';
import { decodePayload, type DecodedMessage } from '../consumer/decode.js';
import { splitCaptured } from '../consumer/captured.js';
import { Deduper } from '../consumer/dedupe.js';
import { EdgegwError, Exit } from '../errors.js';
import { noticeLine, rowLine } from '../consumer/ndjson.js';

export interface DecodeOptions {
  notices?: boolean;
  dedupe?: boolean;
}

export async function decodeCommand(file: string | undefined, o: DecodeOptions): Promise<void> {
  const name = file === undefined || file === '-' ? '-' : file;
  const input = name === '-' ? await readStdin() : await readInput(name);
  const deduper = o.dedupe === true ? new Deduper() : null;
  let failed = 0;
  let out = '';
  for (const entry of splitCaptured(input)) {
    let msg: DecodedMessage;
    try {
      if ('error' in entry) throw entry.error;
      msg = decodePayload(entry.payload);
    } catch (err) {
      failed++;
      const code = err instanceof EdgegwError ? err.code : 'EDGEGW_E_DECODE';
      process.stderr.write(`edgegw decode: ${name}:${entry.line}: ${(err as Error).message} [${code}]\n`);
      continue;
    }
    const kept = deduper === null ? msg : deduper.accept(msg);
    for (const r of kept.rows) out += rowLine(r);
    if (o.notices === true) for (const n of kept.notices) out += noticeLine(n);
  }
  if (out !== '') await new Promise<void>((resolve) => process.stdout.write(out, () => resolve()));
  if (deduper !== null) process.stderr.write(`${JSON.stringify({ gaps: deduper.report() })}\n`);
  if (failed > 0) process.exitCode = Exit.FAILURE;
}

async function readInput(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new EdgegwError('EDGEGW_E_USAGE', `cannot read ${file} (${code})`, Exit.USAGE);
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
