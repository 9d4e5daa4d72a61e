// What the daemon does with each signal. A signal whose default action terminates the process
// would bypass the clean stop (DESIGN.md §2.7: commit what was read, await PUBACKs, close the
// queue), so every catchable one a person or the system may send gets a handler here:
//  - stop: the clean stop (SIGTERM from systemd, SIGINT from Ctrl-C, SIGQUIT; SIGXCPU and SIGPWR
//    warn that a SIGKILL or power loss follows, so stopping now keeps the batch);
//  - reload: SIGHUP (systemctl reload; `edgegw reload` asks through the status socket instead);
//  - ignore (logged): SIGUSR1 (by default Node opens its inspector on 127.0.0.1:9229, a way into
//    the process for any local user; a listener turns that off), SIGUSR2, SIGALRM, SIGVTALRM, SIGIO.
// Left alone on purpose: SIGPIPE (Node ignores it; a closed socket is an EPIPE error), SIGPROF (V8's
// sampling profiler), faults (SIGSEGV, SIGBUS, …: the process cannot go on) and SIGKILL/SIGSTOP.

import { constants } from 'node:os';

export type SignalAction = 'stop' | 'reload' | 'ignore';

export const SIGNAL_ACTIONS: Readonly<Record<string, SignalAction>> = {
  SIGTERM: 'stop',
  SIGINT: 'stop',
  SIGQUIT: 'stop',
  SIGXCPU: 'stop',
  SIGPWR: 'stop',
  SIGHUP: 'reload',
  SIGUSR1: 'ignore',
  SIGUSR2: 'ignore',
  SIGALRM: 'ignore',
  SIGVTALRM: 'ignore',
  SIGIO: 'ignore',
};

export type SignalHandlers = Readonly<Record<SignalAction, (sig: NodeJS.Signals) => void>>;

/** Installs a handler for every signal above this platform has; returns the uninstaller. */
export function installSignalHandlers(handlers: SignalHandlers): () => void {
  const installed: [NodeJS.Signals, () => void][] = [];
  for (const [name, action] of Object.entries(SIGNAL_ACTIONS)) {
    if (!(name in constants.signals)) continue; // e.g. SIGPWR does not exist on macOS
    const sig = name as NodeJS.Signals;
    const listener = () => handlers[action](sig);
    process.on(sig, listener);
    installed.push([sig, listener]);
  }
  return () => {
    for (const [sig, listener] of installed) process.off(sig, listener);
  };
}
