// Child of figures.test.ts: appends and deletes on a queue until the parent kills it (SIGKILL).
// Reports each completed operation so the parent can kill it in the middle of the next one.

import { pino } from 'pino';
import { Sealer } from '../../../src/seal/sealer.js';
import { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { fixedReadings } from '../../helpers/queue.js';

const [dir, keyHex] = process.argv.slice(2);
const sealer = await Sealer.create(Buffer.from(keyHex!, 'hex'));
const q = new SealedQueue({
  dir: dir!,
  maxBytes: 8 * 1024,
  whenFull: 'drop-oldest',
  durability: 'fsync',
  seal: (seq, readings) => sealer.seal(seq, readings),
  log: pino({ level: 'silent' }),
});
await q.start();
let op = 0;
for (;;) {
  const seq = await q.append(fixedReadings(1 + (op % 7)));
  // Acks arrive out of order and together: some deletes share a write, some records stay.
  if (seq !== null && op % 3 === 2) await Promise.all([q.delete(seq - 1), q.delete(seq - 2)]);
  op++;
  process.send?.(op);
}
