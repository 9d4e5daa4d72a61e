// deploy/aws must point at handlers the package really exports, and configure what they rely on.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const AWS = new URL('../../../../deploy/aws/', import.meta.url);
const read = (f: string) => JSON.parse(readFileSync(new URL(f, AWS), 'utf8')) as Record<string, unknown>;

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}

describe('deploy/aws', () => {
  const template = read('template.json') as { Resources: Record<string, Resource> };
  const resources = Object.values(template.Resources);

  it('names Lambda handlers that src/consumer/lambda.ts exports', async () => {
    const lambda = (await import('../../../src/consumer/lambda.js')) as Record<string, unknown>;
    const fns = resources.filter((r) => r.Type === 'AWS::Lambda::Function');
    assert.equal(fns.length, 2);
    for (const f of fns) {
      const m = /^dist\/src\/consumer\/lambda\.(\w+)$/.exec(String(f.Properties['Handler']));
      assert.ok(m, String(f.Properties['Handler']));
      assert.equal(typeof lambda[m[1]!], 'function', m[1]);
    }
  });

  it('asks for partial batch responses on the Kinesis trigger, and base64-wraps for the Lambda action', () => {
    const esm = resources.find((r) => r.Type === 'AWS::Lambda::EventSourceMapping')!;
    assert.deepEqual(esm.Properties['FunctionResponseTypes'], ['ReportBatchItemFailures']);
    const rule = read('iot-rule.json') as { sql: string };
    assert.match(rule.sql, /^SELECT encode\(\*, 'base64'\) AS data FROM /);
    const text = JSON.stringify(template);
    assert.match(text, /SELECT encode\(\*, 'base64'\) AS data FROM '\$\{TopicFilter\}'/);
    assert.match(text, /SELECT \* FROM '\$\{TopicFilter\}'/);
  });
});
