// The deduper's state on disk. Written atomically (temp file, fsync, rename, fsync of the folder) so
// a crash leaves the old state or the new one, never a torn file. A state file that does not read
// back is an error, never a silent fresh start: that would emit every redelivered seq again.

import { writeFileDurably } from '../durable-file.js';
import { readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GAP_WHYS } from './decode.js';
import { STATE_VERSION, type DeduperState } from './dedupe.js';
import { ConsumerStateError } from './errors.js';

/** The saved state, or null when the file does not exist yet. */
export async function loadState(path: string): Promise<DeduperState | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new ConsumerStateError(`cannot read consumer state ${path} (${code ?? 'error'})`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ConsumerStateError(`consumer state ${path} is not valid JSON`);
  }
  checkState(doc, path);
  return doc;
}

export async function saveState(path: string, state: DeduperState): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFileDurably(path, tmp, JSON.stringify(state));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConsumerStateError(`cannot write consumer state ${path} (${code})`, { cause: err });
  }
}

function checkState(doc: unknown, path: string): asserts doc is DeduperState {
  const bad = (what: string): never => {
    throw new ConsumerStateError(`consumer state ${path}: ${what}`);
  };
  if (typeof doc !== 'object' || doc === null) return bad('not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d['version'] !== STATE_VERSION) return bad(`version ${String(d['version'])} is not ${STATE_VERSION}`);
  const gws = d['gateways'];
  if (typeof gws !== 'object' || gws === null || Array.isArray(gws)) return bad('gateways is not an object');
  for (const [gw, g] of Object.entries(gws as Record<string, unknown>)) {
    const s = g as Record<string, unknown> | null;
    if (typeof s !== 'object' || s === null) return bad(`gateway ${gw} is not an object`);
    if (!Array.isArray(s['spans']) || !Array.isArray(s['explained'])) return bad(`gateway ${gw} lacks spans`);
    let prev = 0;
    for (const sp of s['spans'] as unknown[]) {
      const x = sp as { from?: unknown; to?: unknown } | null;
      if (typeof x?.from !== 'number' || typeof x.to !== 'number' || x.from <= prev || x.to < x.from) {
        return bad(`gateway ${gw} has spans out of order`);
      }
      prev = x.to + 1;
    }
    const totals = s['totals'] as Record<string, unknown> | undefined;
    for (const w of GAP_WHYS)
      if (typeof totals?.[w] !== 'object') return bad(`gateway ${gw} lacks totals.${w}`);
    if (typeof s['givenUpSeqs'] !== 'number') return bad(`gateway ${gw} lacks givenUpSeqs`);
  }
}
