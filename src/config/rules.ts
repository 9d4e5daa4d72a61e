// Rules the schema alone cannot say: cross-key constraints, AWS IoT Core limits, Modbus sanity, and
// personal-data warnings. They run on the defaulted (not yet decoded) document and guard every type,
// so they can report alongside structural errors.

import { brokerUrlProblems } from '../uplink/broker-url.js';
import { parseDuration, parseSize } from './units.js';
import { didYouMean } from './suggest.js';
import { isObj, show, type Obj } from './structure.js';
import { KEY_MATERIAL_MESSAGE, hasPemBlock } from './secrets.js';
import type { IssueList } from './issues.js';
import { REGISTER_WIDTH } from './data-types.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: unknown): number | undefined => (Number.isInteger(v) ? (v as number) : undefined);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});

function ms(v: unknown): number | undefined {
  try {
    return typeof v === 'string' ? parseDuration(v) : undefined;
  } catch {
    return undefined;
  }
}

function bytes(v: unknown): number | undefined {
  try {
    return typeof v === 'string' ? parseSize(v) : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes one reading may take in a message, and the fixed overhead of a message (DESIGN.md §3). */
export const WIRE_BYTES_PER_READING = 48;
export const WIRE_MESSAGE_OVERHEAD = 512;

const REGISTERS: Readonly<Record<string, number>> = REGISTER_WIDTH;

// An e-mail address is looked for only at each `@`: one local-part character before it, then a
// domain matched from just after it with bounded labels (RFC 1035: ≤ 63), so the whole search is
// linear in the text. The unbounded `[…]+@[…]+(\.[…]+)+` it replaces rescanned the rest of the text
// from every start position, and took 10 s on a 100 KB value.
const EMAIL_LOCAL = /[A-Za-z0-9._%+-]/;
const EMAIL_DOMAIN = /[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}/y;

function hasEmail(text: string): boolean {
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    if (at === 0 || !EMAIL_LOCAL.test(text[at - 1] ?? '')) continue;
    EMAIL_DOMAIN.lastIndex = at + 1;
    if (EMAIL_DOMAIN.test(text)) return true;
  }
  return false;
}

// Nine or more digits, optionally led by + and split by spaces, dots or dashes: a phone number.
const PHONE = /(^|[^0-9])\+?[0-9](?:[ .-]?[0-9]){8,14}($|[^0-9])/;

/** The kind of personal data `text` seems to hold, if any; linear in its length. */
export function personalData(text: string): string | undefined {
  if (hasEmail(text)) return 'an e-mail address';
  if (PHONE.test(text)) return 'a phone number';
  return undefined;
}

function warnPersonal(issues: IssueList, path: (string | number)[], text: string | undefined, what: string) {
  const kind = text === undefined ? undefined : personalData(text);
  if (kind) {
    issues.warn(
      path,
      `this ${what} looks like it contains ${kind}; AWS advises against personal data in names ` +
        '(they can appear in billing and diagnostic logs)',
    );
  }
}

export function checkRules(site: unknown, issues: IssueList): void {
  if (!isObj(site)) return;
  checkNoPem(site, [], issues);
  const gatewayId = str(obj(site.gateway).id);
  warnPersonal(issues, ['gateway', 'id'], gatewayId, 'gateway id');
  checkUplink(obj(site.uplink), gatewayId, issues);
  checkQueueFitsMessage(site, issues);
  const busNames = checkBuses(obj(site.buses), issues);
  if (Array.isArray(site.sensors)) checkSensors(site.sensors, busNames, issues);
  const metrics = str(obj(site.status).metrics);
  if (metrics !== undefined && !isHostPort(metrics)) {
    issues.error(
      ['status', 'metrics'],
      `${show(metrics)} is not host:port (e.g. 127.0.0.1:9464 or [::1]:9464)`,
    );
  }
}

function checkUplink(up: Obj, gatewayId: string | undefined, issues: IssueList): void {
  const url = str(up.url);
  if (url !== undefined) checkUrl(url, issues);

  const topic = str(up.topic);
  if (topic !== undefined) {
    const t = topic.replaceAll('{gateway}', gatewayId ?? '');
    const len = Buffer.byteLength(t, 'utf8');
    const slashes = t.split('/').length - 1;
    if (/[+#]/.test(t))
      issues.error(['uplink', 'topic'], `${show(topic)} contains + or #: wildcards cannot be published to`);
    if (len > 256)
      issues.error(
        ['uplink', 'topic'],
        `the topic is ${len} bytes once {gateway} is filled in; IoT Core allows 256`,
      );
    if (slashes > 7)
      issues.error(['uplink', 'topic'], `the topic has ${slashes} slashes; IoT Core allows at most 7`);
    if (t.length === 0) issues.error(['uplink', 'topic'], 'the topic is empty');
    warnPersonal(issues, ['uplink', 'topic'], topic, 'topic');
  }

  // keepalive outside IoT Core's 30s..20m is clamped with a warning after decoding (clamps.ts).
  const backoff = obj(up.backoff);
  const min = ms(backoff.min);
  const max = ms(backoff.max);
  if (min !== undefined && max !== undefined && min > max) {
    const at = issues.written(['uplink', 'backoff', 'min']) ? 'min' : 'max';
    issues.error(
      ['uplink', 'backoff', at],
      `backoff.min (${String(backoff.min)}) is larger than backoff.max (${String(backoff.max)}): ` +
        'the first reconnect delay must not exceed the largest',
    );
  }
}

/** The broker URL rule lives with the uplink (one rule for the config check and the connection). */
function checkUrl(url: string, issues: IssueList): void {
  for (const problem of brokerUrlProblems(url)) issues.error(['uplink', 'url'], problem);
}

/** No value may hold a PEM block: certificates and keys are named by path, never inlined. */
function checkNoPem(v: unknown, path: (string | number)[], issues: IssueList): void {
  if (typeof v === 'string') {
    if (hasPemBlock(v)) issues.error(path, KEY_MATERIAL_MESSAGE);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => checkNoPem(x, [...path, i], issues));
  } else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) checkNoPem(x, [...path, k], issues);
  }
}

function checkQueueFitsMessage(site: Obj, issues: IssueList): void {
  const readings = int(obj(site.queue).maxRecordReadings);
  const maxPayload = bytes(obj(obj(site.uplink).limits).maxPayloadBytes);
  if (readings === undefined || maxPayload === undefined) return;
  const need = readings * WIRE_BYTES_PER_READING + WIRE_MESSAGE_OVERHEAD;
  if (need > maxPayload) {
    const written = issues.written(['queue', 'maxRecordReadings']);
    const at =
      written || !issues.written(['uplink', 'limits', 'maxPayloadBytes'])
        ? ['queue', 'maxRecordReadings']
        : ['uplink', 'limits', 'maxPayloadBytes'];
    issues.error(
      at,
      `a record of ${readings} readings may need ${need} bytes (${WIRE_BYTES_PER_READING} per reading + ` +
        `${WIRE_MESSAGE_OVERHEAD}), more than uplink.limits.maxPayloadBytes (${maxPayload}); ` +
        `lower queue.maxRecordReadings to at most ${Math.floor((maxPayload - WIRE_MESSAGE_OVERHEAD) / WIRE_BYTES_PER_READING)}`,
    );
  }
}

function checkBuses(buses: Obj, issues: IssueList): string[] {
  for (const [name, bus] of Object.entries(buses)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      issues.error(['buses', name], `bus name ${show(name)}: use 1 to 64 of A-Z a-z 0-9 _ . -`, 'key');
    }
    if (!isObj(bus)) continue;
    const has = ['rtu', 'tcp'].filter((k) => bus[k] !== undefined);
    if (has.length === 2) issues.error(['buses', name], 'a bus has exactly one of `rtu` or `tcp`, not both');
    if (has.length === 0) issues.error(['buses', name], 'a bus needs one of `rtu` (serial) or `tcp`');
  }
  return Object.keys(buses);
}

function checkSensors(sensors: unknown[], busNames: string[], issues: IssueList): void {
  const firstById = new Map<string, number>();
  sensors.forEach((raw, i) => {
    if (!isObj(raw)) return;
    const id = str(raw.id);
    if (id !== undefined) {
      const first = firstById.get(id);
      if (first !== undefined) {
        issues.error(
          ['sensors', i, 'id'],
          `duplicate sensor id ${show(id)} (first used by sensors[${first}])`,
        );
      } else {
        firstById.set(id, i);
      }
      warnPersonal(issues, ['sensors', i, 'id'], id, 'sensor id');
    }
    if ('bus' in raw && !('gpio' in raw) && !('sim' in raw)) checkModbus(raw, i, busNames, issues);
    const sim = obj(raw.sim);
    if (typeof sim.min === 'number' && typeof sim.max === 'number' && sim.min > sim.max) {
      issues.error(['sensors', i, 'sim', 'min'], `sim.min (${sim.min}) is larger than sim.max (${sim.max})`);
    }
  });
}

function checkModbus(s: Obj, i: number, busNames: string[], issues: IssueList): void {
  const bus = str(s.bus);
  if (bus !== undefined && !busNames.includes(bus)) {
    const hint = didYouMean(bus, busNames);
    const known =
      busNames.length > 0 ? `known buses: ${busNames.join(', ')}` : 'no buses are defined under `buses`';
    issues.error(
      ['sensors', i, 'bus'],
      `unknown bus ${show(bus)}${hint ? `; did you mean \`${hint}\`?` : ''} (${known})`,
    );
  }
  const table = str(s.table);
  const type = str(s.type);
  const bits = table === 'coil' || table === 'discrete';
  if (type !== undefined && table !== undefined && REGISTERS[type] !== undefined) {
    if (bits && type !== 'bool') {
      issues.error(['sensors', i, 'type'], `a ${table} is one bit: type must be bool, not ${show(type)}`);
    } else if (!bits && type === 'bool') {
      issues.error(
        ['sensors', i, 'type'],
        `a ${table} register holds numbers: use int16, uint16, … float64, not bool`,
      );
    }
  }
  const address = int(s.address);
  const count = bits ? 1 : (REGISTERS[type ?? 'uint16'] ?? 1);
  if (address !== undefined && address <= 65535 && address + count - 1 > 65535) {
    issues.error(
      ['sensors', i, 'address'],
      `${type ?? 'this type'} needs ${count} registers from ${address}, past the last address 65535`,
    );
  }
}

function isHostPort(text: string): boolean {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  return m !== null && port >= 1 && port <= 65535;
}
