// Child of sensor-ids.test.ts: appends records that each bring new sensors (each needs a new
// dictionary entry) until the parent kills it (SIGKILL). Reports each completed append.

import { pino } from 'pino';
import { Keyring } from '../../../src/seal/keyring.js';
import { SealedQueue } from '../../../src/queue/sealed-queue.js';

const [dir, keyHex, run] = process.argv.slice(2);
const ring = await Keyring.fromKeys({ key: Buffer.from(keyHex!, 'hex'), file: 'crash-key' });
const q = new SealedQueue({
  dir: dir!,
  maxBytes: 64 * 1024 * 1024,
  whenFull: 'drop-oldest',
  durability: 'fsync',
  seal: (seq, readings, ids) => ring.seal(seq, readings, ids),
  log: pino({ level: 'silent' }),
});
await q.start();
for (let op = 1; ; op++) {
  // Two sensors new to the queue and one it knows: the record needs its fresh entries.
  const ts = 1_764_380_000_000 + op * 10;
  await q.append([
    { sensor: `run${run!}-new-${op}-a`, ts, value: op, quality: 'good' },
    { sensor: 'known-sensor', ts: ts + 1, value: 1.5, quality: 'good' },
    { sensor: `run${run!}-new-${op}-b`, ts: ts + 2, value: -op, quality: 'good' },
  ]);
  process.send?.(op);
}
