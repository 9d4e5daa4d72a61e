// The peer a Node developer would write instead of edgegw: mqtt.js publishing each reading as its
// own QoS 1 JSON message, with mqtt.js's outgoing store (IStore) backed by LevelDB at the same
// durability: each packet is written with sync:true before it is sent and deleted on its PUBACK
// without sync, as edgegw deletes (the idea of the `mqtt-level-store` package, written here in a
// few lines on `level`; that package syncs neither).
// The peer is given its best chance: TCP_NODELAY on (mqtt.js leaves it off), 100 publishes in
// flight like edgegw's lifted-quota run, a warm-up like edgegw's (JIT, TLS, LevelDB), and readings
// generated before the clock starts, as edgegw's are.

import net from 'node:net';
import { Readable } from 'node:stream';
import { Level } from 'level';
import mqtt, { type IStore, type MqttClient } from 'mqtt';
import type { DemoPki } from '../src/demo/pki.js';
import type { Reading } from '../src/types.js';

type StorePacket = Parameters<IStore['put']>[0];
type DoneCallback = Parameters<IStore['put']>[1];
type PacketCallback = Parameters<IStore['get']>[1];

/** mqtt.js outgoing store on LevelDB; every put is fsync'd before mqtt.js writes the packet. */
export class LevelStore implements IStore {
  constructor(private readonly db: Level<string, string>) {}

  private static key(messageId: number | undefined): string {
    return String(messageId ?? 0).padStart(5, '0');
  }

  put(packet: StorePacket, cb: DoneCallback): this {
    const p = packet as StorePacket & { messageId?: number; payload?: unknown };
    const payload = p.payload instanceof Uint8Array ? Buffer.from(p.payload).toString('base64') : p.payload;
    this.db.put(LevelStore.key(p.messageId), JSON.stringify({ ...p, payload }), { sync: true }).then(
      () => cb(),
      (err: Error) => cb(err),
    );
    return this;
  }

  get(packet: { messageId?: number }, cb: PacketCallback): this {
    this.db.get(LevelStore.key(packet.messageId)).then(
      (v) => (v === undefined ? cb(new Error('missing packet')) : cb(undefined, LevelStore.decode(v))),
      (err: Error) => cb(err),
    );
    return this;
  }

  del(packet: { messageId?: number }, cb: PacketCallback): this {
    const key = LevelStore.key(packet.messageId);
    this.db.get(key).then(
      async (v) => {
        if (v === undefined) return cb(new Error('missing packet'));
        // Unsynced, like edgegw's deletes: a lost delete only resends an acknowledged packet.
        await this.db.del(key);
        cb(undefined, LevelStore.decode(v));
      },
      (err: Error) => cb(err),
    );
    return this;
  }

  createStream(): ReturnType<IStore['createStream']> {
    const db = this.db;
    async function* packets(): AsyncGenerator<StorePacket> {
      for await (const v of db.values()) yield LevelStore.decode(v);
    }
    return Readable.from(packets()) as unknown as ReturnType<IStore['createStream']>;
  }

  close(cb: DoneCallback): void {
    cb();
  }

  private static decode(v: string): StorePacket {
    const p = JSON.parse(v) as StorePacket & { payload?: unknown };
    if (typeof p.payload === 'string')
      return { ...p, payload: Buffer.from(p.payload, 'base64') } as StorePacket;
    return p;
  }
}

export interface PeerResult {
  delivered: number;
  elapsedMs: number;
  cpuUs: number;
}

/**
 * Publishes readings one per message: a warm-up of `warmupMs` (not counted), then `durationMs`
 * measured, each until its last PUBACK. `readings` are generated beforehand and taken in turn
 * (from the start again if the peer ever gets through them all).
 */
export async function runPeer(o: {
  dir: string;
  url: string;
  pki: DemoPki;
  readings: readonly Reading[];
  warmupMs: number;
  durationMs: number;
  inflight: number;
}): Promise<PeerResult> {
  if (o.readings.length === 0) throw new Error('bench: the peer needs readings');
  const db = new Level<string, string>(o.dir);
  await db.open();
  const client: MqttClient = mqtt.connect(o.url, {
    ca: o.pki.caCert,
    cert: o.pki.clientCert,
    key: o.pki.clientKey,
    clientId: 'bench-peer',
    protocolVersion: 4,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    outgoingStore: new LevelStore(db),
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const stream: unknown = client.stream;
  if (stream instanceof net.Socket) stream.setNoDelay(true);

  const topic = 'dt/peer/bench-gw1/telemetry';
  let next = 0;
  const publishFor = async (durationMs: number): Promise<PeerResult> => {
    let outstanding = 0;
    let delivered = 0;
    const errors: Error[] = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const until = t0 + durationMs;
    let tEnd = t0;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (outstanding < o.inflight && performance.now() < until && errors.length === 0) {
          const r = o.readings[next++ % o.readings.length]!;
          const payload = JSON.stringify({
            gw: 'bench-gw1',
            sensor: r.sensor,
            ts: r.ts,
            value: r.value,
            q: r.quality,
          });
          outstanding++;
          client.publish(topic, payload, { qos: 1 }, (err) => {
            outstanding--;
            if (err) errors.push(err);
            else delivered++;
            tEnd = performance.now();
            if (outstanding === 0 && (performance.now() >= until || errors.length > 0)) resolve();
            else pump();
          });
        }
      };
      pump();
    });
    const cpu = process.cpuUsage(cpu0);
    if (errors[0] !== undefined) throw errors[0];
    return { delivered, elapsedMs: tEnd - t0, cpuUs: cpu.user + cpu.system };
  };
  try {
    await publishFor(o.warmupMs);
    return await publishFor(o.durationMs);
  } finally {
    await client.endAsync();
    await db.close();
  }
}
