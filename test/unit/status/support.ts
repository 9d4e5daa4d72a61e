// Shared bits of the status tests: a model over fixed uplink/queue figures, a log that keeps its
// lines, temp folders and waiting for a condition with a deadline.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { StatusModel, type QueueStatus, type UplinkStatus } from '../../../src/status/model.js';
import { FakeClock } from '../../helpers/fake-clock.js';

export const T0 = 1_764_380_000_000;

export function fixture(): {
  model: StatusModel;
  clock: FakeClock;
  uplink: UplinkStatus;
  queue: QueueStatus & Record<string, unknown>;
  clockIssue: { text: string | null };
} {
  const clock = new FakeClock(T0);
  const uplink: UplinkStatus = {
    state: 'connected',
    broker: 'broker.example:8883',
    since: T0,
    inflight: 3,
    lastError: null,
  };
  const queue = {
    records: 2,
    readings: 40,
    bytes: 1234,
    oldestTs: T0 - 5000,
    nextSeq: 12,
    firstSeq: 10,
    // The queue's own stats carry more than the status contract shows.
    droppedReadings: 7,
    quarantined: 1,
  };
  const clockIssue = { text: null as string | null };
  const model = new StatusModel({
    gateway: 'site-042-gw1',
    version: '1.2.3',
    clock,
    uplink: () => uplink,
    queue: () => queue,
    clockIssue: () => clockIssue.text,
  });
  return { model, clock, uplink, queue, clockIssue };
}

export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, dest), lines };
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'edgegw-status-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function waitFor(what: string, cond: () => boolean, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
