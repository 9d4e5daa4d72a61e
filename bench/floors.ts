// Section 2's stage floors, each measured on the records the pipeline committed in the same run:
// the least CPU any gateway doing these jobs must spend on those readings (each the least of
// REPEATS timings, as the pipeline's figure is the least of its runs).
//   encode   the indexed body of each record (format 3: sensors by dictionary index, as sealed)
//   seal     the AEAD alone (XChaCha20-Poly1305 of each encoded body; encoding is not counted twice)
//   level    one chained LevelDB batch write of every sealed record, sync:true
//   publish  mqtt.js publishing the wire messages (already packed) over TLS, QoS 1, 100 in flight
//   wire     JSON.stringify of each wire message's object form (the message parsed back, outside
//            the timing): the least any JSON gateway spends making its messages
// and, not floors, what opening and packing cost, and what compression: deflate adds to packing
// (deflate packing at the paced message size less plain packing at the same size).

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Level } from 'level';
import mqtt from 'mqtt';
import sodium from 'libsodium-wrappers';
import type { DemoPki } from '../src/demo/pki.js';
import { encodeIndexedBody } from '../src/seal/codec.js';
import type { Sealer } from '../src/seal/sealer.js';
import type { Reading } from '../src/types.js';
import { messageBytes } from '../src/uplink/pacer.js';
import { packMessages } from '../src/uplink/wire.js';
import { GATEWAY_ID, IOT_CORE, TOPIC } from './pipeline.js';

export interface Floors {
  encodeUs: number;
  sealUs: number;
  levelUs: number;
  publishUs: number;
  wireUs: number;
  /** Not floors, shown to explain the rest: opening (decrypt + decode) and JSON packing. */
  openUs: number;
  packUs: number;
  /** CPU compression: deflate adds to packing, at the paced message size. */
  deflateUs: number;
}

type Records = readonly { seq: number; readings: Reading[] }[];

/**
 * Each stage is timed this many times and its least CPU kept: a floor is the least a stage costs,
 * and on a shared machine noise (GC of an earlier stage, another process) only ever adds to it.
 */
export const REPEATS = 5;

function cpuOf(fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < REPEATS; i++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    best = Math.min(best, c.user + c.system);
  }
  return best;
}

async function cpuOfAsync(fn: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < REPEATS; i++) {
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    best = Math.min(best, c.user + c.system);
  }
  return best;
}

export async function measureFloors(o: {
  records: Records;
  sealer: Sealer;
  dir: string;
  url: string;
  pki: DemoPki;
}): Promise<Floors> {
  await sodium.ready;
  const { records } = o;

  // Records name sensors by index into the queue's dictionary (format 3): the floor encodes the
  // same way, with the dictionary already built (new ids are rare).
  const index = new Map<string, number>();
  for (const r of records)
    for (const x of r.readings) if (!index.has(x.sensor)) index.set(x.sensor, index.size);
  const ids = [...index.keys()];
  const indexOf = (sensor: string): number => index.get(sensor)!;
  const bodies: Uint8Array[] = [];
  const encodeUs = cpuOf(() => {
    bodies.length = 0;
    for (const r of records) {
      const t0 = r.readings.reduce((m, x) => Math.min(m, x.ts), Infinity);
      bodies.push(encodeIndexedBody(r.readings, t0, indexOf));
    }
  });

  const key = randomBytes(32);
  const nonces = randomBytes(24 * bodies.length);
  const ad = new Uint8Array(24);
  const sealUs = cpuOf(() => {
    bodies.forEach((b, i) => {
      new DataView(ad.buffer).setUint32(4, i + 1);
      sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        b,
        ad,
        null,
        nonces.subarray(i * 24, i * 24 + 24),
        key,
      );
    });
  });

  // The records as the queue stores them: compact, their nonce the queue's salt and their seq.
  const salt = randomBytes(16);
  const sealedRecords = records.map((r) => o.sealer.sealCompact(r.seq, r.readings, indexOf, salt));
  const sealed = sealedRecords.map((r) => r.bytes);
  const db = new Level<Uint8Array, Uint8Array>(o.dir, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    compression: false,
  });
  await db.open();
  const levelUs = await cpuOfAsync(async () => {
    const b = db.batch();
    sealed.forEach((v, i) => {
      const k = new Uint8Array(8);
      new DataView(k.buffer).setUint32(4, records[i]!.seq);
      b.put(k, v);
    });
    await b.write({ sync: true });
  });
  await db.close();

  const openUs = cpuOf(() => {
    for (const r of sealedRecords)
      o.sealer.open(
        r,
        (i) => ids[i],
        () => salt,
      );
  });
  let messages: ReturnType<typeof packMessages> = [];
  const packUs = cpuOf(() => {
    messages = packMessages(GATEWAY_ID, records, 128 * 1024);
  });
  const objects: unknown[] = messages.map((m) => JSON.parse(m.payload.toString('utf8')) as unknown);
  let wireChars = 0;
  const wireUs = cpuOf(() => {
    for (const m of objects) wireChars += JSON.stringify(m).length;
  });
  if (wireChars === 0) throw new Error('bench: no wire messages');
  const paced = messageBytes(IOT_CORE);
  const deflateUs =
    cpuOf(() => packMessages(GATEWAY_ID, records, paced, 'deflate')) -
    cpuOf(() => packMessages(GATEWAY_ID, records, paced));
  const client = mqtt.connect(o.url, {
    ca: o.pki.caCert,
    cert: o.pki.clientCert,
    key: o.pki.clientKey,
    clientId: 'bench-floor',
    protocolVersion: 4,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const stream: unknown = client.stream;
  if (stream instanceof net.Socket) stream.setNoDelay(true);
  const topic = TOPIC.replace('{gateway}', GATEWAY_ID);
  const publishUs = await cpuOfAsync(
    () =>
      new Promise<void>((resolve, reject) => {
        let next = 0;
        let outstanding = 0;
        const pump = (): void => {
          while (outstanding < 100 && next < messages.length) {
            outstanding++;
            client.publish(topic, messages[next++]!.payload, { qos: 1 }, (err) => {
              outstanding--;
              if (err) reject(err);
              else if (next === messages.length && outstanding === 0) resolve();
              else pump();
            });
          }
        };
        pump();
      }),
  );
  await client.endAsync();
  return { encodeUs, sealUs, levelUs, publishUs, wireUs, openUs, packUs, deflateUs };
}
