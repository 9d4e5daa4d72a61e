// `edgegw demo`: the whole pipeline on one machine. A throwaway CA and certificates, an embedded
// aedes broker behind a TLS server that requires client certificates and enforces IoT Core's
// per-connection rules, a Modbus TCP simulator, and the daemon running config/demo.yaml against
// them. A subscriber plays the cloud. On a terminal, `c` cuts the uplink and `r` restores it, so
// the backlog is seen growing on disk and draining under the quotas.

import { mkdtemp, copyFile, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { pino } from 'pino';
import { createDemoPki, writeDemoPki } from '../demo/pki.js';
import { IOT_CORE_RULES, startTlsBroker, type TlsBroker } from '../demo/broker.js';
import { startModbusSimulator } from '../demo/modbus-sim.js';
import { writeNewKeyFile } from '../seal/keyfile.js';
import { loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';
import { packagePath } from '../package-root.js';
import { runUntilSignal, logWarnings } from './run.js';
import { DEMO_KEYS_HELP, listenForDemoKeys } from './demo-keys.js';

const DEMO_YAML = packagePath('config', 'demo.yaml');

interface WireMessage {
  ids: string[];
  recs: { seq: number; r: unknown[][] }[];
}

export async function demoCommand(o: { seconds?: string }): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'edgegw-demo-'));
  const out = (s: string) => process.stdout.write(s);
  out(`edgegw demo: runtime folder ${dir}\n`);

  const pki = createDemoPki('demo-gw1');
  await mkdir(join(dir, 'demo-pki'), { mode: 0o700 });
  await writeDemoPki(join(dir, 'demo-pki'), pki);
  await writeNewKeyFile(join(dir, 'demo-pki', 'queue.key'));
  await copyFile(DEMO_YAML, join(dir, 'site.yaml'));

  const broker = await startTlsBroker({ pki, iotcore: true });
  const sim = await startModbusSimulator({ host: '127.0.0.1', port: 0 });
  // A reload (SIGHUP) reads the file with the same overrides: the broker and simulator stay.
  const load = () =>
    loadConfig(join(dir, 'site.yaml'), {
      overrides: { 'uplink.url': broker.url, 'buses.plc-sim.tcp.port': sim.port },
    });
  const loaded = await load();
  const site = loaded.config;
  out(
    `broker ${broker.url} (TLS, client certificate required, IoT Core's per-connection rules)` +
      ` · Modbus TCP simulator 127.0.0.1:${sim.port}\n`,
  );
  const keys = process.stdin.isTTY;
  out(`daemon log: ${join(dir, 'edgegw.log')} · ${keys ? DEMO_KEYS_HELP : 'Ctrl-C stops'}\n`);
  out(`in another terminal: node bin/edgegw.js status --watch --socket ${site.status.socket}\n\n`);

  const log = createLogger({
    level: 'info',
    gateway: site.gateway.id,
    destination: pino.destination({ dest: join(dir, 'edgegw.log'), sync: false, mkdir: true }),
  });
  logWarnings(loaded, log);

  let last = 'waiting for the first message…';
  let received = 0;
  const topic = site.uplink.topic.replace('{gateway}', site.gateway.id);
  const unsubscribe = await broker.subscribe(topic, (payload: Buffer) => {
    // A plain message starts with `{`; anything else is the zlib form (uplink.compression: deflate).
    const json = payload[0] === 0x7b ? payload : inflateSync(payload);
    const msg = JSON.parse(json.toString('utf8')) as WireMessage;
    const seqs = msg.recs.map((r) => r.seq);
    const n = msg.recs.reduce((a, r) => a + r.r.length, 0);
    received += n;
    const sample = msg.recs.at(-1)?.r.at(-1);
    const shown = sample === undefined ? '' : ` · e.g. ${msg.ids[Number(sample[0])]}=${String(sample[2])}`;
    last = `seq ${seqs[0]}..${seqs.at(-1)} · ${n} readings · ${payload.length} B${shown}`;
  });

  const daemon = new Daemon({ loaded, log, load });
  const tty = process.stdout.isTTY;
  const rates = liveRates(broker);
  const timer = setInterval(() => {
    const s = daemon.status.snapshot();
    const r = rates(s.queue.readings);
    const uplink = broker.isCut ? 'CUT (r restores)' : s.uplink.state;
    const line =
      `read ${s.counters.readings} · committed ${s.counters.committed} · delivered ${s.counters.delivered}` +
      ` · queued ${s.queue.readings} (${signed(r.queued)}/s, ${kib(s.queue.bytes)} KiB on disk)` +
      ` · uplink ${uplink} ${r.messages} msg/s ${kib(r.bytes)} KiB/s of ${IOT_CORE_RULES.publishesPerSecond}/s ${kib(IOT_CORE_RULES.bytesPerSecond)} KiB/s` +
      ` · discarded ${broker.rules.discarded} · cloud got ${received} | last message: ${last}`;
    out(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }, 1000);
  timer.unref();
  const stopKeys = keys
    ? listenForDemoKeys(process.stdin, {
        cut: () => broker.cut(),
        restore: () => broker.restore(),
        stop: () => process.kill(process.pid, 'SIGINT'),
      })
    : () => undefined;

  if (o.seconds !== undefined) {
    const ms = Number(o.seconds) * 1000;
    setTimeout(() => process.kill(process.pid, 'SIGINT'), ms).unref();
  }
  try {
    await runUntilSignal(daemon, log);
  } finally {
    stopKeys();
    clearInterval(timer);
    out('\n');
    await unsubscribe();
    await broker.close();
    await sim.close();
    log.flush();
    await rm(dir, { recursive: true, force: true });
  }
  const s = daemon.status.snapshot();
  out(`demo stopped cleanly: ${s.counters.delivered} readings delivered, ${s.queue.readings} left queued\n`);
}

/** Per-second changes since the last call: the backlog, and what the broker read (the quotas' terms). */
function liveRates(
  broker: TlsBroker,
): (queued: number) => { queued: number; messages: number; bytes: number } {
  let at = performance.now();
  let prev: { queued: number; messages: number; bytes: number } | null = null;
  return (queued) => {
    prev ??= { queued, messages: broker.published.messages, bytes: broker.published.bytes };
    const now = performance.now();
    const s = Math.max(0.001, (now - at) / 1000);
    const cur = { queued, messages: broker.published.messages, bytes: broker.published.bytes };
    const r = {
      queued: Math.round((cur.queued - prev.queued) / s),
      messages: Math.round((cur.messages - prev.messages) / s),
      bytes: (cur.bytes - prev.bytes) / s,
    };
    at = now;
    prev = cur;
    return r;
  };
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0);
const signed = (n: number): string => (n > 0 ? `+${n}` : String(n));
