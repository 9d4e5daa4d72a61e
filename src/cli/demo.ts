// `edgegw demo`: the whole pipeline on one machine. A throwaway CA and certificates, an embedded
// aedes broker behind a TLS server that requires client certificates, a Modbus TCP simulator, and
// the daemon running config/demo.yaml against them. A subscriber plays the cloud.

import { mkdtemp, copyFile, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createDemoPki, writeDemoPki } from '../demo/pki.js';
import { startTlsBroker } from '../demo/broker.js';
import { startModbusSimulator } from '../demo/modbus-sim.js';
import { writeNewKeyFile } from '../seal/keyfile.js';
import { loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';
import { runUntilSignal, logWarnings } from './run.js';

const DEMO_YAML = fileURLToPath(new URL('../../../config/demo.yaml', import.meta.url));

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

  const broker = await startTlsBroker({ pki });
  const sim = await startModbusSimulator({ host: '127.0.0.1', port: 0 });
  // A reload (SIGHUP) reads the file with the same overrides: the broker and simulator stay.
  const load = () =>
    loadConfig(join(dir, 'site.yaml'), {
      overrides: { 'uplink.url': broker.url, 'buses.plc-sim.tcp.port': sim.port },
    });
  const loaded = await load();
  const site = loaded.config;
  out(
    `broker ${broker.url} (TLS, client certificate required) · Modbus TCP simulator 127.0.0.1:${sim.port}\n`,
  );
  out(`daemon log: ${join(dir, 'edgegw.log')} · Ctrl-C stops\n`);
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
    const msg = JSON.parse(payload.toString('utf8')) as WireMessage;
    const seqs = msg.recs.map((r) => r.seq);
    const n = msg.recs.reduce((a, r) => a + r.r.length, 0);
    received += n;
    const sample = msg.recs.at(-1)?.r.at(-1);
    const shown = sample === undefined ? '' : ` · e.g. ${msg.ids[Number(sample[0])]}=${String(sample[2])}`;
    last = `seq ${seqs[0]}..${seqs.at(-1)} · ${n} readings · ${payload.length} B${shown}`;
  });

  const daemon = new Daemon({ loaded, log, load });
  const tty = process.stdout.isTTY;
  const timer = setInterval(() => {
    const s = daemon.status.snapshot();
    const line =
      `read ${s.counters.readings} · committed ${s.counters.committed} · delivered ${s.counters.delivered}` +
      ` · queued ${s.queue.readings} · uplink ${s.uplink.state} · cloud got ${received} | last message: ${last}`;
    out(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }, 1000);
  timer.unref();

  if (o.seconds !== undefined) {
    const ms = Number(o.seconds) * 1000;
    setTimeout(() => process.kill(process.pid, 'SIGINT'), ms).unref();
  }
  try {
    await runUntilSignal(daemon, log);
  } finally {
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
