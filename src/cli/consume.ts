// `edgegw consume`: the reference consumer on a broker. Subscribes QoS 1 with a persistent session
// (clean session false, a fixed client id), so what arrives while it is down waits at the broker.
// Each message is decoded, deduplicated by (gw, seq), its new rows written (and fsync'd when --out
// names a file), the state file saved, and only then is the PUBACK sent (mqtt.js handleMessage): a message is acknowledged
// once its rows are durable, so a crash of this process loses nothing (at worst the rows of the one
// message it was on repeat, when it died between output and state). SIGUSR1 prints the gap report
// on stderr; SIGINT/SIGTERM stop, print it and exit 0.

import { hostname } from 'node:os';
import { open, type FileHandle } from 'node:fs/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { decodePayload, type DecodedMessage } from '../consumer/decode.js';
import { Deduper } from '../consumer/dedupe.js';
import { ConsumerStateError } from '../consumer/errors.js';
import { loadState, saveState } from '../consumer/state-file.js';
import { EdgegwError } from '../errors.js';
import { assertPrivateFile } from '../seal/keyfile.js';
import { parseBrokerUrl } from '../uplink/broker-url.js';
import { clientOptions } from '../uplink/client.js';
import { loadTlsFiles } from '../uplink/tls-files.js';
import { noticeLine, rowLine } from '../consumer/ndjson.js';

export interface ConsumeOptions {
  url: string;
  ca: string;
  cert: string;
  key: string;
  topic: string;
  clientId?: string;
  state?: string;
  out?: string;
  notices?: boolean;
}

const KEEPALIVE_MS = 60_000;
const RECONNECT_MS = 1_000;

interface Stats {
  messages: number;
  rows: number;
  notices: number;
  duplicateSeqs: number;
  undecodable: number;
}

/** The gateway's checks name config keys (uplink.url, uplink.key); here they are options. */
function asOptions(err: unknown): unknown {
  if (!(err instanceof EdgegwError)) return err;
  return new EdgegwError(err.code, err.message.replaceAll('uplink.', '--'), err.exitCode, { cause: err });
}

export function defaultClientId(): string {
  return `edgegw-consume-${hostname().replace(/[^A-Za-z0-9_:-]/g, '-')}`.slice(0, 128);
}

export async function consumeCommand(o: ConsumeOptions): Promise<void> {
  let broker: ReturnType<typeof parseBrokerUrl>;
  let tls: Awaited<ReturnType<typeof loadTlsFiles>>;
  try {
    broker = parseBrokerUrl(o.url);
    await assertPrivateFile(o.key, '--key');
    tls = await loadTlsFiles({ ca: o.ca, cert: o.cert, key: o.key });
  } catch (err) {
    throw asOptions(err);
  }
  const saved = o.state === undefined ? null : await loadState(o.state);
  const deduper = new Deduper({}, saved ?? undefined);
  // Written once now, so a state path that cannot be written fails at start, not at the first message.
  if (o.state !== undefined) await saveState(o.state, deduper.state());
  const sink = await Sink.open(o.out);
  const stats: Stats = { messages: 0, rows: 0, notices: 0, duplicateSeqs: 0, undecodable: 0 };
  const say = (s: string) => process.stderr.write(`edgegw consume: ${s}\n`);
  const report = () => process.stderr.write(`${JSON.stringify({ gaps: deduper.report(), ...stats })}\n`);

  let stopping = false;
  // Set from the message chain; a holder, so the check after `await stopped` is not narrowed away.
  const failure: { err: Error | null } = { err: null };
  let chain = Promise.resolve();
  let resolveStop: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (resolveStop = r));

  const handle = async (topic: string, payload: Buffer): Promise<void> => {
    stats.messages++;
    let msg: DecodedMessage;
    try {
      msg = decodePayload(payload);
    } catch (err) {
      // Acknowledged anyway: a payload that never decodes would otherwise come back forever.
      stats.undecodable++;
      const code = err instanceof EdgegwError ? err.code : 'EDGEGW_E_DECODE';
      say(`undecodable payload on ${topic} (${payload.length} bytes): ${(err as Error).message} [${code}]`);
      return;
    }
    const kept = deduper.accept(msg);
    stats.duplicateSeqs += kept.duplicates.length;
    if (kept.duplicates.length === msg.seqs.length) return; // nothing new: state unchanged
    let text = '';
    for (const r of kept.rows) text += rowLine(r);
    if (o.notices === true) for (const n of kept.notices) text += noticeLine(n);
    stats.rows += kept.rows.length;
    stats.notices += kept.notices.length;
    await sink.write(text);
    if (o.state !== undefined) await saveState(o.state, deduper.state());
  };

  const options = {
    ...clientOptions(broker.host, broker.port, {
      gatewayId: o.clientId ?? defaultClientId(),
      keepaliveMs: KEEPALIVE_MS,
      tls,
    }),
    clean: false,
    reconnectPeriod: RECONNECT_MS,
  };
  const client: MqttClient = mqtt.connect(options);
  // mqtt.js sends a QoS 1 PUBACK only when handleMessage calls back (its documented backpressure
  // hook; customHandleAcks works only under MQTT 5), so the ack waits until the rows are durable.
  client.handleMessage = (packet, callback) => {
    if (stopping) return; // not acknowledged: the broker keeps it for the next start
    chain = chain
      .then(() => handle(packet.topic, Buffer.from(packet.payload)))
      .then(
        () => callback(),
        (err: unknown) => {
          failure.err = err instanceof Error ? err : new Error('unexpected failure while handling a message');
          stop();
        },
      );
  };
  client.on('connect', (ack) => {
    say(`connected to ${broker.broker} (session ${ack.sessionPresent ? 'resumed' : 'new'})`);
    client.subscribe(o.topic, { qos: 1 }, (err) => {
      if (err) say(`subscribe to ${o.topic} failed: ${err.message}`);
      else say(`subscribed to ${o.topic}`);
    });
  });
  client.on('error', (err) => say(`connection error: ${err.message}`));
  client.on('offline', () => say('offline; reconnecting'));

  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void chain.then(() => client.endAsync(true)).finally(resolveStop);
  };
  const onUsr1 = () => report();
  process.on('SIGUSR1', onUsr1);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await stopped;
  } finally {
    process.off('SIGUSR1', onUsr1);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await sink.close();
    report();
  }
  if (failure.err !== null) throw failure.err;
}

/** Where rows go: stdout, or a file opened for append and fsync'd before each acknowledgement. */
class Sink {
  private constructor(
    private readonly file: FileHandle | null,
    private readonly path: string,
  ) {}

  static async open(path: string | undefined): Promise<Sink> {
    if (path === undefined || path === '-') return new Sink(null, '-');
    try {
      return new Sink(await open(path, 'a', 0o600), path);
    } catch (err) {
      throw Sink.failed(path, err);
    }
  }

  async write(text: string): Promise<void> {
    if (text === '') return;
    try {
      if (this.file === null) {
        await new Promise<void>((resolve, reject) =>
          process.stdout.write(text, (err) => (err ? reject(err) : resolve())),
        );
        return;
      }
      await this.file.write(text);
      await this.file.sync();
    } catch (err) {
      throw Sink.failed(this.path, err);
    }
  }

  async close(): Promise<void> {
    await this.file?.close().catch(() => undefined);
  }

  private static failed(path: string, err: unknown): ConsumerStateError {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return new ConsumerStateError(`cannot write output ${path} (${code})`, { cause: err });
  }
}
