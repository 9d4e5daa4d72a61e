// Child process for the fake-sysfs GPIO tests. It runs inside a private mount namespace where a fake
// tree is bind-mounted over /sys/class (see gpio-sysfs.ts), so onoff's hardcoded /sys/class/gpio
// paths reach the fake files. It drives the real GPIO driver with the real onoff port and reports
// on stdout, one JSON object per line:
//   {"type":"reading",...} {"type":"error",...} {"type":"started"} {"type":"startError","code","message"}
//   {"type":"readOnce","rows":[...]} {"type":"stopped"}
// Input: argv[2] is JSON { sensors, action: "run" | "readOnce", pollMs?, dropPrivileges? };
// a line "stop" on stdin stops the groups and exits.

import { pino } from 'pino';
import { createInterface } from 'node:readline';
import { EdgegwError } from '../../src/errors.js';
import { createGpioGroups } from '../../src/sensors/gpio/index.js';
import type { SensorContext } from '../../src/sensors/types.js';
import type { SiteConfig } from '../../src/config/schema.js';
import { systemClock } from '../../src/types.js';

interface ChildArgs {
  sensors: unknown[];
  action: 'run' | 'readOnce';
  pollMs?: number;
  dropPrivileges?: boolean;
}

const send = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
  if (args.dropPrivileges === true) {
    // As a service user would run: no root, no gpio group.
    const { setgroups, setgid, setuid } = process;
    if (!setgroups || !setgid || !setuid) throw new Error('cannot drop privileges on this platform');
    setgroups([]);
    setgid(65534);
    setuid(65534);
  }
  const ctx: SensorContext = {
    site: { gateway: { id: 'gpio-child' }, sensors: args.sensors } as unknown as SiteConfig,
    profile: null,
    clock: systemClock,
    log: pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true })),
    observer: {
      reading: (r) => send({ type: 'reading', ...r }),
      error: (sensor, code, message) => send({ type: 'error', sensor, code, message }),
      overrun: (scope, skipped) => send({ type: 'overrun', scope, skipped }),
    },
  };
  const groups = createGpioGroups(ctx, { pollMs: args.pollMs ?? 2 });
  if (args.action === 'readOnce') {
    const rows = (await Promise.all(groups.map((g) => g.readOnce()))).flat();
    send({ type: 'readOnce', rows });
    return;
  }
  try {
    for (const g of groups) await g.start();
  } catch (err) {
    const e = err as Error;
    send({ type: 'startError', code: err instanceof EdgegwError ? err.code : null, message: e.message });
    for (const g of groups) await g.stop();
    return;
  }
  send({ type: 'started' });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === 'stop') break;
  }
  for (const g of [...groups].reverse()) await g.stop();
  send({ type: 'stopped' });
  rl.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`gpio child failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
