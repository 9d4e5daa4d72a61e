// A real SealedQueue in a temp dir, with a real Sealer and a logger whose lines the test can read.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { Sealer } from '../../src/seal/sealer.js';
import { Keyring } from '../../src/seal/keyring.js';
import { SealedQueue, type QueueStats, type SealedQueueOptions } from '../../src/queue/sealed-queue.js';
import type { Reading } from '../../src/types.js';

export interface LogLines {
  log: Logger;
  lines: Record<string, unknown>[];
  text(): string;
}

export function captureLog(): LogLines {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = pino(
    { level: 'debug' },
    {
      write(s: string) {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { log, lines, text: () => raw.join('') };
}

export interface QueueFixture {
  dir: string;
  sealer: Sealer;
  /** The same key as a Keyring: what the daemon seals with (format 3, with the queue's dictionary). */
  ring: Keyring;
  /** Options that make a queue seal as the daemon does: `make(fx.indexed)`. */
  indexed: Pick<SealedQueueOptions, 'seal'>;
  logs: LogLines;
  make(over?: Partial<SealedQueueOptions>): SealedQueue;
  /** Stops every queue made, then removes the folder. */
  cleanup(): Promise<void>;
}

export async function queueFixture(): Promise<QueueFixture> {
  const dir = join(await mkdtemp(join(tmpdir(), 'edgegw-queue-')), 'data');
  const key = randomBytes(32);
  const sealer = await Sealer.create(key);
  const ring = await Keyring.fromKeys({ key, file: 'test-key' });
  const logs = captureLog();
  // Every queue made is stopped by cleanup() (stop() is idempotent), so tests need no bookkeeping.
  const made: SealedQueue[] = [];
  const track = (q: SealedQueue) => (made.push(q), q);
  return {
    dir,
    sealer,
    ring,
    indexed: { seal: (seq, readings, ids) => ring.seal(seq, readings, ids) },
    logs,
    make: (over = {}) =>
      track(
        new SealedQueue({
          dir,
          maxBytes: 64 * 1024 * 1024,
          whenFull: 'drop-oldest',
          durability: 'fsync',
          seal: (seq, readings) => sealer.seal(seq, readings),
          sealNotice: (seq, notice, t0) => sealer.sealNotice(seq, notice, t0),
          log: logs.log,
          ...over,
        }),
      ),
    cleanup: async () => {
      for (const q of made.splice(0)) await q.stop();
      await rm(join(dir, '..'), { recursive: true, force: true });
    },
  };
}

/** `n` readings of one sensor with same-size values, so every record has the same stored size. */
export function fixedReadings(n: number, ts = 1_764_380_000_000): Reading[] {
  return Array.from({ length: n }, (_, i) => ({
    sensor: 'boiler-temp',
    ts: ts + i,
    value: 20.5,
    quality: 'good',
  }));
}

/** `before` (stats of a running queue) as a start after its clean stop sees them: the stop seals the pending gaps into notices, which take the next seqs. */
export function sealedAtStop(before: QueueStats): QueueStats {
  const n = before.pendingGaps;
  return {
    ...before,
    nextSeq: before.nextSeq + n,
    notices: before.notices + n,
    pendingGaps: 0,
    noticeTotals: { ...before.noticeTotals, committed: before.noticeTotals.committed + n },
  };
}
