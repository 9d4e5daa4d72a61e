import { readSensorsOnce } from '../sensors/acquisition.js';
import type { CommissionResult } from '../sensors/types.js';
import { createLogger } from '../log.js';
import { systemClock } from '../types.js';
import { EdgegwError, Exit } from '../errors.js';
import { loadFromArg } from './config-arg.js';
import { formatTable } from './table.js';

/** `edgegw sensors read`: one read of each sensor, for the technician commissioning a site. */
export async function sensorsReadCommand(
  ids: string[],
  o: { config?: string; json?: boolean },
): Promise<void> {
  const loaded = await loadFromArg(o.config);
  // Logs go to stderr so that stdout stays the table or the JSON document.
  const log = createLogger({ level: 'warn', destination: process.stderr });
  let rows: CommissionResult[];
  try {
    rows = await readSensorsOnce(
      {
        site: loaded.config,
        profile: loaded.profile,
        observer: { reading: () => undefined, error: () => undefined, overrun: () => undefined },
        clock: systemClock,
        log,
      },
      ids,
    );
  } catch (err) {
    if (err instanceof EdgegwError) throw err;
    throw new EdgegwError('EDGEGW_E_USAGE', err instanceof Error ? err.message : String(err), Exit.USAGE);
  }
  if (o.json === true) {
    const out = rows.map((r) => ({
      id: r.id,
      value: r.value,
      quality: r.quality,
      ts: r.ts,
      ...(r.error === undefined ? {} : { error: r.error }),
    }));
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(
      formatTable(
        ['ID', 'WHERE', 'RAW', 'VALUE', 'UNIT', 'QUALITY', 'ERROR'],
        rows.map((r) => [
          r.id,
          r.where,
          r.raw === undefined ? '' : r.raw.map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' '),
          r.value === null ? '-' : String(r.value),
          r.unit ?? '',
          r.quality,
          r.error ?? '',
        ]),
      ),
    );
  }
  if (rows.some((r) => r.error !== undefined || r.quality !== 'good')) process.exitCode = Exit.FAILURE;
}
