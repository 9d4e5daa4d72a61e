// A status client that sends requests and never reads must not grow the daemon's memory (DESIGN.md
// §2.5), and must not keep `edgegw status` from an answer: real Unix sockets, real StatusServer.

import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { queryStatus, StatusServer } from '../../../src/status/server.js';
import { fixture, tempDir, waitFor } from './support.js';

/** What one connection may hold: the 64 KiB cap plus one answer (a few hundred bytes here). */
const BOUND = 64 * 1024 + 16 * 1024;
const REQUEST = '{"cmd":"status"}\n';

/** Connects, writes `n` status requests in one go, and never reads an answer. */
function flood(path: string, n: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.pause();
    s.on('error', () => undefined); // the server may drop a flooder: that is allowed
    s.once('error', reject);
    s.on('connect', () => {
      s.write(REQUEST.repeat(n));
      resolve(s);
    });
  });
}

describe('StatusServer backpressure', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: StatusServer;
  const sockets: Socket[] = [];

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    const f = fixture();
    f.model.registerSensors(['boiler-temp', 'door-1']);
    server = new StatusServer({
      socketPath: join(dir, 'status.sock'),
      model: f.model,
      log: pino({ level: 'silent' }),
    });
    await server.start();
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await server.stop();
    await cleanup();
  });

  it('stops reading from a client that does not read, keeps its buffered answers bounded, and answers others', async () => {
    const path = join(dir, 'status.sock');
    const greedy = await flood(path, 50_000);
    sockets.push(greedy);
    // Either the server falls behind without limit (the bug) or it stalls the client: its writes
    // stay queued on the client side while the server holds its cap of answers.
    await waitFor(
      'the server to stall the client, or to overrun the bound',
      () => server.bufferedBytes > BOUND || (server.bufferedBytes >= 64 * 1024 && greedy.writableLength > 0),
      10_000,
    );
    assert.ok(server.bufferedBytes <= BOUND, `server buffers ${server.bufferedBytes} B for one client`);
    assert.ok(greedy.writableLength > 0, 'the client is held back: most of its requests were never read');

    const started = Date.now();
    const s = await queryStatus(path, 2000);
    assert.equal(s.gateway, 'site-042-gw1');
    assert.ok(Date.now() - started < 2000);
    assert.ok(server.bufferedBytes <= BOUND, `still bounded: ${server.bufferedBytes} B`);
  });

  it('a crowd of such clients neither exhausts connections nor memory, and status still answers', async () => {
    const path = join(dir, 'status.sock');
    for (let i = 0; i < 24; i++) sockets.push(await flood(path, 10_000));
    await waitFor('the crowd to be stalled or dropped', () => server.bufferedBytes >= 64 * 1024, 10_000);
    const s = await queryStatus(path, 2000);
    assert.equal(s.gateway, 'site-042-gw1');
    assert.ok(server.connections <= 16, `${server.connections} connections held`);
    assert.ok(server.bufferedBytes <= 16 * BOUND, `${server.bufferedBytes} B buffered in all`);
  });
});
