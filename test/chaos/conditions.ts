// Conditions with deadlines that scenarios wait on (never a fixed sleep before an assertion), and
// the random pause that places a fault at a random moment.

import { waitFor } from '../helpers/site.js';
import { ackedSeqs } from './ledger.js';
import { rand, type ChaosSite } from './harness.js';

/** A random pause in [minMs, maxMs]: where a fault lands, never what a check waits for. */
export function randomMoment(minMs: number, maxMs: number): Promise<void> {
  return new Promise((r) => setTimeout(r, rand(minMs, maxMs)));
}

/** Waits until the broker acknowledged `n` more distinct seqs than now (the uplink makes progress). */
export async function delivers(site: ChaosSite, n: number, ms = 20_000): Promise<void> {
  const before = ackedSeqs(site.ledger).size;
  await waitFor(
    () => ackedSeqs(site.ledger).size >= before + n,
    ms,
    `${n} more records acknowledged by the broker`,
  );
}

/** Status is asked over the daemon's socket: poll it a few times a second, not every 20 ms. */
const STATUS_POLL_MS = 150;

/** Waits until the daemon's status shows at least `n` queued records. */
export async function backlogAtLeast(site: ChaosSite, n: number, ms = 30_000): Promise<void> {
  await waitFor(
    async () => {
      if (!site.daemon.running) throw new Error(`the daemon exited while waiting for a backlog of ${n}`);
      return ((await site.daemon.status())?.queue.records ?? -1) >= n;
    },
    ms,
    `a backlog of ${n} records`,
    STATUS_POLL_MS,
  );
}

/** Waits until the daemon's status shows at most `n` queued records (a drain finished). */
export async function backlogAtMost(site: ChaosSite, n: number, ms = 60_000): Promise<void> {
  await waitFor(
    async () => {
      if (!site.daemon.running)
        throw new Error(`the daemon exited while waiting for the backlog to drain to ${n}`);
      const s = await site.daemon.status();
      return s !== null && s.queue.records <= n;
    },
    ms,
    `the backlog to drain to ${n} records`,
    STATUS_POLL_MS,
  );
}

/** Waits until the daemon logged `pattern` after byte offset `from` of its log. */
export async function logs(site: ChaosSite, pattern: RegExp, from: number, ms = 20_000): Promise<string> {
  let hit = '';
  await waitFor(
    () => {
      const m = pattern.exec(site.daemon.logText().slice(from));
      hit = m?.[0] ?? '';
      return m !== null;
    },
    ms,
    `the daemon to log ${String(pattern)}`,
  );
  return hit;
}
