import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';
import { EdgegwError, Exit } from '../errors.js';
import { loadFromArg } from './config-arg.js';
import { installSignalHandlers } from './signals.js';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';

/** `edgegw run`: the daemon in the foreground until SIGTERM/SIGINT. */
export async function runCommand(configOpt: string | undefined): Promise<void> {
  const loaded = await loadFromArg(configOpt);
  const log = createLogger({ level: loaded.config.log.level, gateway: loaded.config.gateway.id });
  logWarnings(loaded, log);
  const daemon = new Daemon({ loaded, log });
  await runUntilSignal(daemon, log);
}

export function logWarnings(loaded: LoadedConfig, log: Logger): void {
  for (const w of loaded.warnings) {
    log.warn({ code: 'EDGEGW_E_CONFIG', file: w.file, line: w.line, col: w.col, key: w.path }, w.message);
  }
}

/**
 * Starts the daemon, then stops it cleanly on the first stop signal (SIGTERM, SIGINT, …; see
 * signals.ts); a second one forces exit. SIGHUP reloads the configuration (the daemon logs and
 * audits the outcome); no signal bypasses the clean stop.
 */
export async function runUntilSignal(
  daemon: Daemon,
  log: Logger,
  extraStop?: () => Promise<void>,
  reload: (sig: NodeJS.Signals) => void = (sig) => reloadOnSignal(daemon, log, sig),
): Promise<void> {
  let signalled: (sig: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  let count = 0;
  const uninstall = installSignalHandlers({
    stop: (sig) => {
      count++;
      if (count > 1) {
        log.warn({ signal: sig }, 'second signal: exiting without a clean stop');
        process.exit(Exit.SOFTWARE);
      }
      signalled(sig);
    },
    reload,
    ignore: (sig) => log.warn({ signal: sig }, `${sig} ignored: edgegw uses no such signal`),
  });
  try {
    try {
      await daemon.start();
    } catch (err) {
      // EdgegwError messages name files, keys and sensors, never secrets or values.
      if (err instanceof EdgegwError) log.fatal({ code: err.code }, `start failed: ${err.message}`);
      else log.fatal({ code: 'EDGEGW_E_UNEXPECTED' }, 'start failed');
      throw err;
    }
    const sig = await stopped;
    log.info({ signal: sig }, 'stopping');
    await extraStop?.();
    await daemon.stop(sig);
  } finally {
    uninstall();
  }
}

/** SIGHUP: the daemon reads its file again; a refusal keeps the running configuration. */
function reloadOnSignal(daemon: Daemon, log: Logger, sig: NodeJS.Signals): void {
  log.info({ signal: sig }, `${sig}: reloading the configuration`);
  void daemon.reload().then(
    (r) => {
      if (r.applied) log.info({ changed: r.changed, configHash: r.hash }, r.message);
      else {
        const code = r.restartNeeded.length > 0 ? 'EDGEGW_E_RELOAD_RESTART' : 'EDGEGW_E_CONFIG';
        log.warn({ code, restartNeeded: r.restartNeeded }, r.message);
      }
    },
    (err: unknown) => log.error({ code: 'EDGEGW_E_UNEXPECTED', err: String(err) }, 'reload failed'),
  );
}
