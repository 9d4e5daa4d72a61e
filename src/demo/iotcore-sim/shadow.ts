// A SIMULATOR of a remote AWS service: the AWS IoT Device Shadow service's MQTT topic protocol, on
// the test broker's aedes (IoT Core cannot be reached from the test machines). Written from AWS's
// developer guide ("Device Shadow MQTT topics", "Interacting with shadows", "Shadow document
// examples", "Device Shadow service quotas"): classic and named shadows under
// `$aws/things/<thing>/shadow[/name/<name>]`; `/get`, `/update`, `/delete` answered on
// `/accepted` or `/rejected` ({code, message, timestamp, clientToken}); `/update/delta` (the desired
// keys that differ from reported, published when an update sets desired and a difference remains),
// `/update/documents` (previous and current); versions that start at 1 and grow by one per update;
// 409 on a request version that is not the current one; null deletes a key; objects merge, arrays
// are replaced whole; 400 for bad JSON, no `state`, a clientToken over 64 bytes or nesting past 6;
// 413 past 8 KB of desired + reported; 404 for a get of a shadow that does not exist. Timestamps are
// epoch seconds. Not simulated: the 10-in-flight 429 (a test injects any rejection with
// `failNext`), metadata of array elements (an array's metadata is one timestamp), the
// account-wide rates, persistent sessions, authorization.

import type { Aedes, AedesPublishPacket } from 'aedes';

type Json = Record<string, unknown>;

interface Doc {
  desired: Json;
  reported: Json;
  metaDesired: Json;
  metaReported: Json;
  version: number;
  timestamp: number;
}

export interface ShadowServiceOptions {
  /** Epoch ms; Date.now by default. */
  now?: () => number;
}

const TOPIC = /^\$aws\/things\/([^/]+)\/shadow(?:\/name\/([^/]+))?\/(get|update|delete)$/;
const MAX_STATE_BYTES = 8 * 1024;
const MAX_DEPTH = 6;

export class ShadowService {
  private readonly docs = new Map<string, Doc>();
  private readonly failures: { code: number; message: string }[] = [];
  /** Every request the service answered (topic and payload as JSON), oldest first. */
  readonly requests: { topic: string; body: Json | null }[] = [];
  private readonly now: () => number;
  private readonly listener = (packet: AedesPublishPacket, client: unknown): void => {
    if (client === null || client === undefined) return; // its own replies, and the broker's
    const m = TOPIC.exec(packet.topic);
    if (m === null) return;
    this.handle(
      packet.topic,
      m[1]!,
      m[2] ?? '',
      m[3] as 'get' | 'update' | 'delete',
      Buffer.from(packet.payload),
    );
  };

  constructor(
    private readonly aedes: Aedes,
    opts: ShadowServiceOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    aedes.on('publish', this.listener);
  }

  close(): void {
    this.aedes.removeListener('publish', this.listener);
  }

  /** A cloud application sets desired state (as UpdateThingShadow does): delta goes out. */
  setDesired(thing: string, name: string, desired: Json): number {
    const r = this.update(thing, name, { state: { desired } });
    if ('code' in r) throw new Error(`shadow update refused: ${r.code} ${r.message}`);
    return r.version;
  }

  /** The shadow as GetThingShadow returns it, or null. */
  document(thing: string, name: string): { desired: Json; reported: Json; version: number } | null {
    const d = this.docs.get(key(thing, name));
    return d === undefined
      ? null
      : { desired: structuredClone(d.desired), reported: structuredClone(d.reported), version: d.version };
  }

  /** The next request (get/update/delete) is rejected with this code (e.g. 429). */
  failNext(code: number, message: string): void {
    this.failures.push({ code, message });
  }

  private handle(
    topic: string,
    thing: string,
    name: string,
    op: 'get' | 'update' | 'delete',
    p: Buffer,
  ): void {
    let body: Json | null = null;
    if (p.length > 0) {
      try {
        const parsed: unknown = JSON.parse(p.toString('utf8'));
        body = isObject(parsed) ? parsed : null;
      } catch {
        body = null;
      }
      if (body === null) return this.reject(topic, 400, 'Invalid JSON', undefined);
    }
    this.requests.push({ topic, body });
    const token = typeof body?.clientToken === 'string' ? body.clientToken : undefined;
    if (token !== undefined && Buffer.byteLength(token) > 64) {
      return this.reject(topic, 400, 'Client token is too long', undefined);
    }
    const failure = this.failures.shift();
    if (failure !== undefined) return this.reject(topic, failure.code, failure.message, token);
    const k = key(thing, name);
    if (op === 'get') {
      const d = this.docs.get(k);
      if (d === undefined)
        return this.reject(topic, 404, `No shadow exists with name: '${name || thing}'`, token);
      const delta = diff(d.desired, d.reported);
      const state: Json = { desired: d.desired, reported: d.reported };
      if (delta !== undefined) state.delta = delta;
      return this.send(`${topic}/accepted`, {
        state,
        metadata: { desired: d.metaDesired, reported: d.metaReported },
        version: d.version,
        timestamp: d.timestamp,
        ...(token === undefined ? {} : { clientToken: token }),
      });
    }
    if (op === 'delete') {
      const d = this.docs.get(k);
      if (d === undefined)
        return this.reject(topic, 404, `No shadow exists with name: '${name || thing}'`, token);
      this.docs.delete(k);
      return this.send(`${topic}/accepted`, {
        version: d.version,
        timestamp: this.seconds(),
        clientToken: token,
      });
    }
    const r = this.update(thing, name, body ?? {});
    if ('code' in r) return this.reject(topic, r.code, r.message, token);
  }

  private update(
    thing: string,
    name: string,
    body: Json,
  ): { version: number } | { code: number; message: string } {
    const state = body.state;
    if (!isObject(state)) return { code: 400, message: 'Missing required node: state' };
    if (depth(state) > MAX_DEPTH + 1)
      return { code: 400, message: 'JSON contains too many levels of nesting; maximum is 6' };
    const k = key(thing, name);
    const prev = this.docs.get(k);
    if (typeof body.version === 'number' && body.version !== (prev?.version ?? 0)) {
      return { code: 409, message: 'Version conflict' };
    }
    const ts = this.seconds();
    const d: Doc = structuredClone(
      prev ?? { desired: {}, reported: {}, metaDesired: {}, metaReported: {}, version: 0, timestamp: ts },
    );
    if (isObject(state.desired)) merge(d.desired, d.metaDesired, state.desired, ts);
    if (isObject(state.reported)) merge(d.reported, d.metaReported, state.reported, ts);
    if (Buffer.byteLength(JSON.stringify({ d: d.desired, r: d.reported })) > MAX_STATE_BYTES) {
      return { code: 413, message: 'The payload exceeds the maximum size allowed' };
    }
    d.version += 1;
    d.timestamp = ts;
    this.docs.set(k, d);
    const token = typeof body.clientToken === 'string' ? { clientToken: body.clientToken } : {};
    const prefix = `$aws/things/${thing}/shadow${name === '' ? '' : `/name/${name}`}/update`;
    this.send(`${prefix}/accepted`, { state, metadata: {}, version: d.version, timestamp: ts, ...token });
    this.send(`${prefix}/documents`, {
      previous:
        prev === undefined
          ? null
          : { state: { desired: prev.desired, reported: prev.reported }, version: prev.version },
      current: { state: { desired: d.desired, reported: d.reported }, version: d.version },
      timestamp: ts,
      ...token,
    });
    const delta = diff(d.desired, d.reported);
    if (isObject(state.desired) && delta !== undefined) {
      this.send(`${prefix}/delta`, {
        version: d.version,
        timestamp: ts,
        state: delta,
        metadata: {},
        ...token,
      });
    }
    return { version: d.version };
  }

  private reject(topic: string, code: number, message: string, clientToken: string | undefined): void {
    this.send(`${topic}/rejected`, {
      code,
      message,
      timestamp: this.seconds(),
      ...(clientToken === undefined ? {} : { clientToken }),
    });
  }

  private send(topic: string, body: unknown): void {
    const payload = Buffer.from(JSON.stringify(body));
    this.aedes.publish(
      { cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false },
      () => undefined,
    );
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }
}

function key(thing: string, name: string): string {
  return `${thing}\u0000${name}`;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function depth(v: unknown): number {
  if (!isObject(v)) return 0;
  return 1 + Math.max(0, ...Object.values(v).map(depth));
}

/** Objects merge key by key, null deletes, anything else (arrays too) replaces. */
function merge(into: Json, meta: Json, patch: Json, ts: number): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete into[k];
      delete meta[k];
    } else if (isObject(v)) {
      if (!isObject(into[k])) into[k] = {};
      if (!isObject(meta[k])) meta[k] = {};
      merge(into[k] as Json, meta[k] as Json, v, ts);
      if (Object.keys(into[k] as Json).length === 0) delete into[k];
    } else {
      into[k] = structuredClone(v);
      meta[k] = { timestamp: ts };
    }
  }
}

/** The desired keys whose value differs from reported (objects compared key by key); undefined when none. */
function diff(desired: Json, reported: Json): Json | undefined {
  const out: Json = {};
  for (const [k, v] of Object.entries(desired)) {
    const r = reported[k];
    if (isObject(v) && isObject(r)) {
      const sub = diff(v, r);
      if (sub !== undefined) out[k] = sub;
    } else if (JSON.stringify(v) !== JSON.stringify(r)) out[k] = v;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
