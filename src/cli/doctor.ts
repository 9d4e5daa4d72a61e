import { runDoctor, anyFailed } from '../doctor/doctor.js';
import { formatDoctor } from '../doctor/format.js';
import { Exit } from '../errors.js';
import { configPath } from './config-arg.js';

/** `edgegw doctor`: one PASS/WARN/FAIL line per check; exit 1 if any failed. */
export async function doctorCommand(o: { config?: string; json?: boolean }): Promise<void> {
  const lines = await runDoctor({ configFile: configPath(o.config) });
  process.stdout.write(o.json === true ? `${JSON.stringify(lines)}\n` : formatDoctor(lines));
  process.exitCode = anyFailed(lines) ? Exit.FAILURE : Exit.OK;
}
