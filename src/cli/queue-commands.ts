import { audit } from '../audit.js';
import { SealedQueue } from '../queue/sealed-queue.js';
import { repairQueue } from '../queue/repair.js';
import type { Keyring } from '../seal/keyring.js';
import { loadQueueKeyring } from '../seal/rotated-keys.js';
import { createLogger } from '../log.js';
import { Exit } from '../errors.js';
import type { SiteConfig } from '../config/schema.js';
import type { QueueKeys } from '../queue/key-ranges.js';
import { loadFromArg } from './config-arg.js';

function queueKeys(keyring: Keyring): QueueKeys {
  return {
    current: keyring.currentId,
    files: keyring.files(),
    identify: (rec, salts) => keyring.identify(rec, salts),
    openId: (index, entry) => keyring.openId(index, entry),
    indicesOf: (rec, keyId, salts) => keyring.indicesOf(rec, keyId, salts),
  };
}

function loadKeys(site: SiteConfig): Promise<Keyring> {
  return loadQueueKeyring(site.queue);
}

/**
 * `edgegw queue inspect|verify`: offline figures; verify authenticates every record. Both read a
 * private copy of the queue (nothing is written to dataDir); inspect needs no key, verify refuses
 * a key set that cannot open the queue, like `run`.
 */
export async function queueCommand(
  verb: 'inspect' | 'verify',
  o: { config?: string; json?: boolean },
): Promise<void> {
  const { config: site } = await loadFromArg(o.config);
  const log = createLogger({ level: 'warn', destination: process.stderr, gateway: site.gateway.id });
  const keyring = verb === 'verify' ? await loadKeys(site) : null;
  const queue = new SealedQueue({
    dir: site.gateway.dataDir,
    maxBytes: site.queue.maxBytes,
    whenFull: site.queue.whenFull,
    durability: site.queue.durability,
    seal: () => {
      throw new Error('read-only');
    },
    log,
    readOnly: true,
    ...(keyring === null ? {} : { keys: queueKeys(keyring) }),
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
      // Notice records (DESIGN.md §3): not in records/readings, nor in the data totals above.
      notices: s.notices,
      pendingGaps: s.pendingGaps,
      noticeTotals: s.noticeTotals,
      // Entries of the sealed sensor-id dictionary (format-3 records carry their indices).
      sensorIds: queue.sensorIds.size,
    };
    let tampered: number[] = [];
    let damagedIds: number[] = [];
    if (keyring !== null) {
      const ids = queue.sensorIds;
      tampered = (await queue.verify((rec) => keyring.open(rec, queue.sealedBy(rec.seq), ids))).tampered;
      // A damaged entry is reported, never re-created: records that use it fail above too.
      damagedIds = queue.verifySensorIds(keyring).damaged;
      audit(
        log,
        'queue-verify',
        {
          records: s.records,
          tampered: tampered.length,
          tamperedSeqs: tampered.slice(0, 100).map(String),
          damagedSensorIds: damagedIds.length,
        },
        tampered.length === 0 && damagedIds.length === 0
          ? 'queue verified'
          : 'queue verified: records or sensor-id entries fail authentication',
      );
    }
    if (o.json === true) {
      const doc = verb === 'verify' ? { ...figures, tampered, damagedSensorIds: damagedIds } : figures;
      process.stdout.write(`${JSON.stringify(doc)}\n`);
    } else {
      const age = s.oldestTs === null ? '-' : `${Math.round((Date.now() - s.oldestTs) / 1000)}s ago`;
      process.stdout.write(
        `records ${s.records}  readings ${s.readings}  bytes ${s.bytes}  seq ${s.firstSeq ?? '-'}..${s.nextSeq - 1}` +
          `  next ${s.nextSeq}  oldest ${age}  quarantined ${s.quarantined}  notices ${s.notices}\n`,
      );
      for (const r of queue.keyRanges())
        process.stdout.write(`key id ${r.id} sealed from seq ${r.fromSeq}\n`);
      if (verb === 'verify') {
        process.stdout.write(
          tampered.length === 0
            ? `all ${s.records} records authenticate\n`
            : `${tampered.length} record(s) fail authentication: seq ${tampered.join(', ')}\n`,
        );
        process.stdout.write(
          damagedIds.length === 0
            ? `all ${queue.sensorIds.size} sensor-id entries authenticate\n`
            : `${damagedIds.length} sensor-id entr${damagedIds.length === 1 ? 'y fails' : 'ies fail'} authentication: index ${damagedIds.join(', ')}\n`,
        );
      }
    }
    if (tampered.length > 0 || damagedIds.length > 0) process.exitCode = Exit.FAILURE;
  } finally {
    await queue.stop();
  }
}

/** `edgegw queue repair`: explicit recovery of a damaged queue (src/queue/repair.ts); prints what it did. */
export async function queueRepairCommand(o: { config?: string }): Promise<void> {
  const { config: site } = await loadFromArg(o.config);
  const keyring = await loadKeys(site);
  const r = await repairQueue(site.gateway.dataDir, queueKeys(keyring));
  audit(
    createLogger({ level: 'warn', destination: process.stderr, gateway: site.gateway.id }),
    'queue-repair',
    {
      kept: r.kept,
      keptReadings: r.keptReadings,
      quarantined: r.quarantined.length,
      backup: r.backup,
      rebuilt: r.rebuilt,
      nextSeq: r.nextSeq,
      damagedSensorIds: r.damagedSensorIds.length,
    },
    'queue repaired',
  );
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`copy of the files before repair: ${r.backup}`);
  out(
    r.rebuilt
      ? `LevelDB rebuilt the database from its remaining tables and logs (damage: ${r.damage ?? 'unknown'})`
      : 'the database opened and read as it was; no LevelDB repair was needed',
  );
  const range = r.firstSeq === null ? '' : ` (seq ${r.firstSeq}..${r.lastSeq})`;
  out(`kept ${r.kept} records, ${r.keptReadings} readings${range}: every one authenticates`);
  if (r.quarantined.length > 0) {
    out(
      `quarantined ${r.quarantined.length} record(s) that fail authentication: seq ${r.quarantined.join(', ')}`,
    );
  }
  out(
    r.damagedSensorIds.length === 0
      ? `all ${r.sensorIds} sensor-id entries authenticate`
      : `${r.damagedSensorIds.length} of ${r.sensorIds} sensor-id entries fail authentication (index ` +
          `${r.damagedSensorIds.join(', ')}): kept as they are, never re-created; records that use them are ` +
          'quarantined when the uplink reads them',
  );
  for (const k of r.keys) out(`key id ${k.id} sealed from seq ${k.fromSeq}`);
  out(`next seq ${r.nextSeq} (past every seq seen: none is reused)`);
  if (r.skipped !== null) {
    out(`seq ${r.skipped.from}..${r.skipped.to} skipped: the next start sends a notice that explains them`);
  }
}
