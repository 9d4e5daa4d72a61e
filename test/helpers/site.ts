// A complete throwaway site on disk: PKI, queue key, site.yaml, and a running TLS broker.

import { inflateSync } from 'node:zlib';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createDemoPki, writeDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type IotCoreRules, type TlsBroker } from '../../src/demo/broker.js';
import { writeNewKeyFile } from '../../src/seal/keyfile.js';

export interface TestSite {
  dir: string;
  configFile: string;
  pki: DemoPki;
  broker: TlsBroker;
  topic: string;
  cleanup(): Promise<void>;
}

export interface SiteOptions {
  gatewayId?: string;
  /** YAML lines for `sensors:` (already indented by two spaces). */
  sensors?: string;
  /** Extra YAML for `buses:`. */
  buses?: string;
  flush?: string;
  extraQueue?: string;
  extraUplink?: string;
  logLevel?: string;
  /** Extra top-level YAML sections (e.g. `clock: { poll: 100ms }`). */
  extra?: string;
  /**
   * IoT Core's per-connection rules at the site's broker: on (IoT Core's numbers) unless false, or
   * some numbers overridden. Measured: no site test trips them; tests that lift the uplink's quotas
   * start their own broker without them.
   */
  iotcore?: Partial<IotCoreRules> | boolean;
}

export async function makeSite(opts: SiteOptions = {}): Promise<TestSite> {
  const dir = await mkdtemp(join(tmpdir(), 'edgegw-site-'));
  const gw = opts.gatewayId ?? 'test-gw1';
  const pki = createDemoPki(gw);
  await mkdir(join(dir, 'pki'), { mode: 0o700 });
  await writeDemoPki(join(dir, 'pki'), pki);
  await writeNewKeyFile(join(dir, 'pki', 'queue.key'));
  const iotcore = opts.iotcore ?? true;
  const broker = await startTlsBroker({ pki, ...(iotcore === false ? {} : { iotcore }) });
  const yaml = `gateway:
  id: ${gw}
  dataDir: ./data
uplink:
  url: ${broker.url}
  ca: pki/ca.pem
  cert: pki/client.pem
  key: pki/client.key
  backoff: { min: 100ms, max: 1s }
${opts.extraUplink ?? ''}
queue:
  keyFile: pki/queue.key
  durability: fsync
  flush: ${opts.flush ?? '100ms'}
${opts.extraQueue ?? ''}
buses:
${opts.buses ?? '  {}'}
sensors:
${opts.sensors ?? '  - { id: counter-1, sim: { wave: counter }, every: 50ms }'}
status:
  socket: ./status.sock
log: { level: ${opts.logLevel ?? 'warn'} }
${opts.extra ?? ''}
`;
  const configFile = join(dir, 'site.yaml');
  await writeFile(configFile, yaml.replace('buses:\n  {}', 'buses: {}'));
  return {
    dir,
    configFile,
    pki,
    broker,
    topic: `dt/edgegw/${gw}/telemetry`,
    cleanup: async () => {
      await broker.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A logger that writes nothing, audit entries included (they are written whatever the level, so a
 * plain silent pino would still print them on the test run's stdout).
 */
export function quietLog(): Logger {
  return pino({ level: 'silent' }, { write: () => undefined });
}

/** Polls `cond` every 20 ms until it holds or `ms` pass; throws with `what` on timeout. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  /** Between polls; a condition that asks a daemon over its socket polls less often. */
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface WireMessage {
  v: number;
  gw: string;
  ids: string[];
  /** A notice record has an empty `r` and a `gap` (DESIGN.md §3): decodeWire yields no rows for it. */
  recs: {
    seq: number;
    t0: number;
    r: (number | boolean | string)[][];
    gap?: { from: number; to: number; why: string; readings: number | null };
  }[];
}

/** Readings of a wire message as plain objects (the consumer's view). */
/** A payload as the test's own decoder reads it: plain JSON, or a zlib stream of it (node:zlib only). */
export function parseWire(payload: Buffer): WireMessage {
  const json = payload[0] === 0x7b ? payload : inflateSync(payload);
  return JSON.parse(json.toString('utf8')) as WireMessage;
}

export function decodeWire(
  m: WireMessage,
): { seq: number; sensor: string; ts: number; value: unknown; quality: string }[] {
  return m.recs.flatMap((rec) =>
    rec.r.map(([i, dt, value, quality]) => ({
      seq: rec.seq,
      sensor: m.ids[Number(i)]!,
      ts: rec.t0 + Number(dt),
      value,
      quality: typeof quality === 'string' ? quality : 'good',
    })),
  );
}

/**
 * The seqs in 1..upTo that `messages` neither carried (as a record or a notice) nor explained by
 * a notice's gap: what a consumer that received them all would see missing, unexplained.
 */
export function unexplainedSeqs(messages: readonly WireMessage[], upTo: number): number[] {
  const seen = new Set<number>();
  const gaps: { from: number; to: number }[] = [];
  for (const m of messages) {
    for (const rec of m.recs) {
      seen.add(rec.seq);
      if (rec.gap !== undefined) gaps.push(rec.gap);
    }
  }
  const out: number[] = [];
  for (let seq = 1; seq <= upTo; seq++) {
    if (!seen.has(seq) && !gaps.some((g) => g.from <= seq && seq <= g.to)) out.push(seq);
  }
  return out;
}

/**
 * Whether a seq above `above` arrived and every seq up to the highest arrived or is explained. What
 * a wait for "delivery after X" must test: the uplink sends live records ahead of a backlog, and a
 * clean stop sends only the live tail, so a new seq alone says nothing of the records before it.
 */
export function deliveredPast(messages: readonly WireMessage[], above: number): boolean {
  let top = 0;
  for (const m of messages) for (const rec of m.recs) top = Math.max(top, rec.seq);
  return top > above && unexplainedSeqs(messages, top).length === 0;
}

/** A fresh site per test with a subscriber on its telemetry topic (registers mocha hooks). */
export interface SubscribedSite {
  readonly site: TestSite;
  /** Every message the subscriber received in this test, in arrival order. */
  readonly messages: WireMessage[];
  /** The readings of every message received, decoded. */
  readonly readings: () => ReturnType<typeof decodeWire>;
}

export function subscribedSite(opts: SiteOptions = {}): SubscribedSite {
  let site: TestSite | null = null;
  let unsubscribe: (() => Promise<void>) | null = null;
  const messages: WireMessage[] = [];
  beforeEach(async () => {
    messages.length = 0;
    site = await makeSite(opts);
    unsubscribe = await site.broker.subscribe(site.topic, (p: Buffer) => {
      messages.push(parseWire(p));
    });
  });
  afterEach(async () => {
    await unsubscribe?.();
    await site?.cleanup();
    site = null;
  });
  return {
    get site(): TestSite {
      if (site === null) throw new Error('subscribedSite: used outside a test');
      return site;
    },
    messages,
    readings: () => messages.flatMap(decodeWire),
  };
}
