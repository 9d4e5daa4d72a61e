import { SealedQueue } from '../queue/sealed-queue.js';
import { Sealer } from '../seal/sealer.js';
import { readQueueKey } from '../seal/keyfile.js';
import { createLogger } from '../log.js';
import { Exit } from '../errors.js';
import { loadFromArg } from './config-arg.js';

/** `edgegw queue inspect|verify`: offline figures; verify authenticates every record. */
export async function queueCommand(
  verb: 'inspect' | 'verify',
  o: { config?: string; json?: boolean },
): Promise<void> {
  const { config: site } = await loadFromArg(o.config);
  const log = createLogger({ level: 'warn', destination: process.stderr });
  const sealer = verb === 'verify' ? await Sealer.create(await readQueueKey(site.queue.keyFile)) : null;
  const queue = new SealedQueue({
    dir: site.gateway.dataDir,
    maxBytes: site.queue.maxBytes,
    whenFull: site.queue.whenFull,
    durability: site.queue.durability,
    seal: () => {
      throw new Error('read-only');
    },
    log,
  });
  await queue.start();
  try {
    const s = queue.stats();
    const figures = {
      records: s.records,
      readings: s.readings,
      bytes: s.bytes,
      firstSeq: s.firstSeq,
      nextSeq: s.nextSeq,
      oldestTs: s.oldestTs,
      quarantined: s.quarantined,
      totals: s.totals,
    };
    let tampered: number[] = [];
    if (sealer !== null) tampered = (await queue.verify((rec) => sealer.open(rec))).tampered;
    if (o.json === true) {
      const doc = verb === 'verify' ? { ...figures, tampered } : figures;
      process.stdout.write(`${JSON.stringify(doc)}\n`);
    } else {
      const age = s.oldestTs === null ? '-' : `${Math.round((Date.now() - s.oldestTs) / 1000)}s ago`;
      process.stdout.write(
        `records ${s.records}  readings ${s.readings}  bytes ${s.bytes}  seq ${s.firstSeq ?? '-'}..${s.nextSeq - 1}` +
          `  next ${s.nextSeq}  oldest ${age}  quarantined ${s.quarantined}\n`,
      );
      if (verb === 'verify') {
        process.stdout.write(
          tampered.length === 0
            ? `all ${s.records} records authenticate\n`
            : `${tampered.length} record(s) fail authentication: seq ${tampered.join(', ')}\n`,
        );
      }
    }
    if (tampered.length > 0) process.exitCode = Exit.FAILURE;
  } finally {
    await queue.stop();
  }
}
