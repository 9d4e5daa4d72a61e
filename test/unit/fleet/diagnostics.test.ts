// The diagnostics job's statusDetails (src/fleet/diagnostics.ts, through the `diagnostics`
// operation): a big gateway's report stays within REPORT_MAX with a visible `truncated` marker and
// parses; the doctor's FAIL and WARN lines keep their reasons and come first; key material, URL
// userinfo and PEM blocks never appear, key ids and key paths do.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { REPORT_MAX, doctorLines } from '../../../src/fleet/diagnostics.js';
import { operationRegistry, type OperationContext } from '../../../src/fleet/operations.js';
import { statusDetails } from '../../../src/fleet/job-runner.js';
import type { CheckLine } from '../../../src/doctor/check.js';

const HEX_KEY = randomBytes(32).toString('hex');
const B64_KEY = 'Qk3xv9ZtP2mLw8RyN4cJ7hTfA1sDgE5uKoWbVqHnXiM='; // 32 bytes, mixed classes
const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
const KEY_ID = randomBytes(16).toString('hex');

function diagnose(report: Record<string, unknown>): Promise<Record<string, string>> {
  const op = operationRegistry().get('diagnostics')!;
  return op({}, { diagnostics: () => Promise.resolve(report) } as unknown as OperationContext);
}
const joined = (d: Record<string, string>) =>
  Array.from({ length: Number(d.parts) }, (_, i) => d[`report${i}`]).join('');

describe('diagnostics report', () => {
  const doctor: CheckLine[] = [
    { check: 'config', result: 'PASS', found: 'site.yaml', fix: '' },
    {
      check: 'broker tls',
      result: 'FAIL',
      found: 'certificate expired 2026-01-01',
      fix: 'edgegw rotate-certificate',
    },
    { check: 'storage', result: 'WARN', found: '/var/lib/edgegw has 3% free', fix: 'free space' },
  ];

  it('doctor lines: FAIL and WARN first, with what was found and the fix; PASS by name', () => {
    assert.deepEqual(doctorLines(doctor), [
      'FAIL broker tls: certificate expired 2026-01-01 (fix: edgegw rotate-certificate)',
      'WARN storage: /var/lib/edgegw has 3% free (fix: free space)',
      'PASS config',
    ]);
  });

  it('a big gateway: the whole statusDetails stay within the cap, marked truncated, and parse', async () => {
    const sensors = Array.from({ length: 5000 }, (_, i) => ({
      id: `plant-a-line-${i}-temperature`,
      errors: i,
      lastError: `EDGEGW_E_SENSOR_READ: modbus tcp 10.0.${i % 250}.1:502 timed out`.repeat(3),
    }));
    const d = await diagnose({ gateway: 'gw1', sensors, doctor: doctorLines(doctor) });
    const size = Object.entries(d).reduce((n, [k, v]) => n + k.length + v.length, 0);
    assert.ok(size <= REPORT_MAX + 600, `statusDetails of ${size} characters`);
    assert.ok(Number(d.parts) <= 12);
    for (const v of Object.values(d)) assert.ok(v.length >= 1 && v.length <= 1024);
    assert.deepEqual(statusDetails(d), d, 'nothing AWS would refuse');
    assert.match(d.truncated!, /^over 12288 characters; sensors: \d+ of 5000 shown$/);
    const report = JSON.parse(joined(d)) as { sensors: unknown[]; doctor: string[]; truncated: string };
    assert.equal(report.truncated, d.truncated);
    assert.ok(report.sensors.length > 10 && report.sensors.length < 5000);
    // The doctor's short list is kept whole, with its reasons.
    assert.equal(
      report.doctor[0],
      'FAIL broker tls: certificate expired 2026-01-01 (fix: edgegw rotate-certificate)',
    );
  });

  it('a small report is whole: truncated "no"', async () => {
    const d = await diagnose({ gateway: 'gw1', sensors: [], doctor: ['PASS config'] });
    assert.equal(d.truncated, 'no');
    assert.deepEqual(JSON.parse(joined(d)), { gateway: 'gw1', sensors: [], doctor: ['PASS config'] });
  });

  it('never carries key material, URL credentials or PEM blocks; key ids and key paths stay', async () => {
    const d = await diagnose({
      uplink: { lastError: 'connect to mqtts://device:s3cretPass@broker.example:8883 refused' },
      sensors: [{ id: 's1', errors: 1, lastError: `bad frame ${HEX_KEY}` }],
      doctor: [
        `FAIL queue key: /etc/edgegw/queue.key holds ${B64_KEY} (fix: edgegw keygen /etc/edgegw/queue.key)`,
        `FAIL uplink key: ${PEM}`,
        `PASS queue keys: key id ${KEY_ID}`,
      ],
    });
    const text = joined(d);
    for (const secret of [
      HEX_KEY,
      B64_KEY,
      's3cretPass',
      'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
      'PRIVATE KEY',
    ]) {
      assert.ok(!text.includes(secret), `no ${secret.slice(0, 12)}… in the report`);
    }
    assert.ok(text.includes('/etc/edgegw/queue.key'));
    assert.ok(text.includes(KEY_ID));
    assert.ok(text.includes('mqtts://***@broker.example:8883'));
    assert.ok(text.includes('[redacted]'));
  });
});
