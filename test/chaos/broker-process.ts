// The chaos suite's broker as its own process, so a scenario can SIGKILL and restart it:
// startTlsBroker (src/demo/broker.ts) on a fixed port with the PKI files the harness wrote.
//   node broker-process.js PKI_DIR PORT LEDGER
// Every acknowledged telemetry message is appended to LEDGER synchronously, before its PUBACK is
// written (onAcked runs just before), so a kill never loses what was acknowledged:
//   A <seq>:<readings> <seq>:<readings> …   one line per acknowledged message; a notice record
//                                            is <seq>:0:<why>:<from>-<to>:<readings or null>
//   C                                        a client connected (each line starts an epoch)
// Control lines on stdin (each answered with `ok <line>` or `err <line>` on stdout):
//   pause | resume | drop | every N | cut

import { inflateSync } from 'node:zlib';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startTlsBroker } from '../../src/demo/broker.js';
import type { DemoPki } from '../../src/demo/pki.js';

const [pkiDir, portArg, ledger] = process.argv.slice(2);
if (pkiDir === undefined || portArg === undefined || ledger === undefined) {
  process.stderr.write('usage: broker-process PKI_DIR PORT LEDGER\n');
  process.exit(64);
}

const read = (f: string): string => readFileSync(join(pkiDir, f), 'utf8');
const pki: DemoPki = {
  caCert: read('ca.pem'),
  serverCert: read('server.pem'),
  serverKey: read('server.key'),
  clientCert: read('client.pem'),
  clientKey: read('client.key'),
};

/** `recs[].seq` and `recs[].r.length` of a telemetry payload (DESIGN.md §3); unknown shapes: "?". */
function ledgerLine(payload: Buffer): string {
  try {
    const json = payload[0] === 0x7b ? payload : inflateSync(payload);
    const m = JSON.parse(json.toString('utf8')) as {
      recs?: {
        seq?: unknown;
        r?: unknown;
        gap?: { from: number; to: number; why: string; readings: unknown };
      }[];
    };
    const recs = (m.recs ?? [])
      .filter((r) => typeof r.seq === 'number')
      .map((r) => {
        const head = `${String(r.seq)}:${Array.isArray(r.r) ? r.r.length : 0}`;
        const g = r.gap;
        return g === undefined ? head : `${head}:${g.why}:${g.from}-${g.to}:${String(g.readings)}`;
      });
    return `A ${recs.join(' ')}\n`;
  } catch {
    return `? ${payload.length}\n`;
  }
}

const broker = await startTlsBroker({
  pki,
  port: Number(portArg),
  onAcked: (_topic, payload) => appendFileSync(ledger, ledgerLine(payload)),
});
broker.aedes.on('client', () => appendFileSync(ledger, 'C\n'));

const control = createInterface({ input: process.stdin });
control.on('line', (raw) => {
  const line = raw.trim();
  const [cmd, arg] = line.split(/\s+/);
  try {
    if (cmd === 'pause') broker.pauseAcks();
    else if (cmd === 'resume') broker.resumeAcks();
    else if (cmd === 'drop') broker.dropAcks();
    else if (cmd === 'every') broker.dropEveryNthAck(Number(arg));
    else if (cmd === 'cut') broker.dropConnections();
    else throw new Error('unknown');
    process.stdout.write(`ok ${line}\n`);
  } catch {
    process.stdout.write(`err ${line}\n`);
  }
});
control.on('close', () => {
  void broker.close().then(() => process.exit(0));
});
process.on('SIGTERM', () => {
  void broker.close().then(() => process.exit(0));
});
process.stdout.write(`ready ${broker.port}\n`);
