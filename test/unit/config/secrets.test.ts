// Secrets pasted where a path or a URL belongs: refused, and never repeated by any message.

import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/config/load.js';
import { maskUserinfo } from '../../../src/config/redact.js';
import { KEY_MATERIAL_MESSAGE, looksLikeKeyMaterial } from '../../../src/config/secrets.js';
import { BASE, SiteDir } from './fixture.js';

const SECRET = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7SECRET';
const PEM = `-----BEGIN PRIVATE KEY-----\\n${SECRET}\\n-----END PRIVATE KEY-----\\n`;
const QUEUE_KEY_B64 = 'q8Vx3PASSbNf0ZtXyW2k7Lm1Pq9Rs4Tu6Vw8Xy0AaBc=';
const QUEUE_KEY_HEX = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

describe('config secrets', () => {
  let site: SiteDir;
  beforeEach(async () => {
    site = await SiteDir.create();
  });
  afterEach(async () => {
    await site.remove();
  });

  /** Loads `yaml`, expecting errors; asserts none of them (nor the whole message) holds `secret`. */
  async function refused(yaml: string, ...secrets: string[]): Promise<readonly string[]> {
    let err: unknown;
    try {
      await site.load(yaml);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError, String(err));
    for (const s of secrets) {
      assert.ok(!err.message.includes(s), `the error repeats a secret:\n${err.message}`);
    }
    return err.issues.map((i) => `${i.path} ${i.line}:${i.col} ${i.message}`);
  }

  it('a PEM private key pasted into uplink.key, cert or ca: refused at its key, not echoed', async () => {
    for (const key of ['key', 'cert', 'ca']) {
      const yaml = BASE.replace(new RegExp(`  ${key}: [a-z]+\\.pem\\n`), `  ${key}: "${PEM}"\n`);
      const issues = await refused(yaml, SECRET, 'MIIE');
      const line = { ca: 5, cert: 6, key: 7 }[key];
      assert.deepEqual(issues, [`uplink.${key} ${line}:${key.length + 5} ${KEY_MATERIAL_MESSAGE}`]);
    }
  });

  it('a PEM as a block scalar, or in a key that is no path at all', async () => {
    const block = BASE.replace(
      '  cert: cert.pem\n',
      `  cert: |\n    -----BEGIN RSA PRIVATE KEY-----\n    ${SECRET}\n    -----END RSA PRIVATE KEY-----\n`,
    );
    assert.deepEqual(await refused(block, SECRET), [`uplink.cert 6:9 ${KEY_MATERIAL_MESSAGE}`]);
    const alpn = BASE.replace('  key: key.pem\n', `  key: key.pem\n  alpn: "${PEM}"\n`);
    assert.deepEqual(await refused(alpn, SECRET), [`uplink.alpn 8:9 ${KEY_MATERIAL_MESSAGE}`]);
  });

  it('a queue key (base64 or hex) pasted into queue.keyFile: refused, not echoed', async () => {
    for (const k of [
      QUEUE_KEY_B64,
      QUEUE_KEY_HEX,
      `  ${QUEUE_KEY_B64.slice(0, 20)} ${QUEUE_KEY_B64.slice(20)}`,
    ]) {
      const issues = await refused(
        BASE.replace('keyFile: queue.key', `keyFile: "${k}"`),
        k.trim(),
        'PASS',
        '9f86d0',
      );
      assert.deepEqual(issues, [`queue.keyFile 9:12 ${KEY_MATERIAL_MESSAGE}`]);
    }
  });

  it('a real key file whose name merely looks like base64 still loads', async () => {
    await site.write(QUEUE_KEY_B64.replace(/[/=+]/g, 'x'), 'key bytes\n');
    const { config } = await site.load(
      BASE.replace('keyFile: queue.key', `keyFile: ${QUEUE_KEY_B64.replace(/[/=+]/g, 'x')}`),
    );
    assert.match(config.queue.keyFile, /q8Vx3/);
  });

  it('a missing ordinary file is still named', async () => {
    const issues = await refused(BASE.replace('keyFile: queue.key', 'keyFile: keys/queue.key'));
    assert.match(issues[0]!, /queue\.keyFile 9:12 .*keys\/queue\.key: no such file/);
  });

  it('a URL password in every form is refused without echoing it', async () => {
    const urls = [
      'mqtts:u:PASSWORD@h',
      'mqtts:u:PASSWORD@h:8883',
      'mqtts://u:PASSWORD@h:8883',
      'MQTTS://u:PASSWORD@h',
      'mqtts://u:PASS%40WORD@h',
      'mqtts://u%3APASSWORD%40h',
      'mqtts:/u:PASSWORD@h',
      'mqtts://h:8883/x?u=PASSWORD@h',
    ];
    for (const url of urls) {
      const issues = await refused(BASE.replace('mqtts://broker.example:8883', `'${url}'`), 'PASS', 'WORD');
      assert.deepEqual(issues, [
        'uplink.url 4:8 the URL carries user:password@; remove it: IoT Core authenticates the gateway by its client certificate',
      ]);
    }
    const other = await refused(BASE.replace('mqtts://broker.example:8883', "'mqtt:u:PASSWORD@h'"), 'PASS');
    assert.equal(other.length, 2);
    assert.match(other[1]!, /uses mqtt; only mqtts/);
  });

  it('no URL error quotes the URL', async () => {
    for (const url of ['mqtts:PASSWORD', 'mqtts:h:PASSWORD', 'not a url PASSWORD', 'mqtt://PASSWORD']) {
      const issues = await refused(BASE.replace('mqtts://broker.example:8883', `'${url}'`), 'PASSWORD');
      assert.equal(issues.length, 1, url);
    }
  });

  it('key material anywhere in an error (a value or a key name) is never shown', async () => {
    const profile = BASE.replace('  id: gw1\n', `  id: gw1\n  profile: "${QUEUE_KEY_B64}"\n`);
    assert.match(
      (await refused(profile, QUEUE_KEY_B64, 'PASS'))[0]!,
      /looks like key material \(not shown\)/,
    );
    const asKey = BASE.replace('  key: key.pem\n', `  key: key.pem\n  ${QUEUE_KEY_B64.slice(0, 43)}: 1\n`);
    const issues = await refused(asKey, 'PASS');
    assert.match(issues[0]!, /^uplink\.<key material> 8:3 an unknown key that looks like key material/);
    const asUnit =
      BASE + `sensors:\n  - { id: a, sim: { wave: sine }, unit: ${QUEUE_KEY_HEX}${QUEUE_KEY_HEX} }\n`;
    assert.match((await refused(asUnit, '9f86d0'))[0]!, /too long/);
  });

  it('recognises key material, not ordinary paths and names', () => {
    for (const k of [
      QUEUE_KEY_B64,
      QUEUE_KEY_HEX,
      PEM,
      'BEGIN PRIVATE KEY',
      `${QUEUE_KEY_B64.slice(0, 22)}\n${QUEUE_KEY_B64.slice(22)}`,
    ]) {
      assert.ok(looksLikeKeyMaterial(k), k);
    }
    for (const p of [
      '/etc/edgegw/queue.key',
      'pki/client.key',
      'device.private.key',
      'site-042-gw1',
      'x-amzn-mqtt-ca',
      '/run/edgegw/status.sock',
      'dt/edgegw/{gateway}/telemetry',
      'raspberry-pi-4',
    ]) {
      assert.ok(!looksLikeKeyMaterial(p), p);
    }
  });

  it('maskUserinfo masks userinfo with or without //', () => {
    for (const url of ['mqtts:u:PASS@h', 'mqtts://u:PASS@h', 'x mqtts://u:PASS@h y']) {
      assert.ok(!maskUserinfo(url).includes('PASS'), maskUserinfo(url));
    }
    assert.equal(maskUserinfo('mqtts://h:8883'), 'mqtts://h:8883');
  });
});
