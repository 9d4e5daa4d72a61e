// `edgegw demo`'s keys: cut the uplink and restore it while the backlog is watched. Read from a
// terminal in raw mode (one key press, no Enter), which also turns Ctrl-C into a byte instead of
// SIGINT, so that byte is mapped back to the clean stop.

export type DemoKeyAction = 'cut' | 'restore' | 'stop';

export const DEMO_KEYS_HELP = 'keys: c cuts the uplink · r restores it · Ctrl-C stops';

/** The action of one key press (a chunk from a raw-mode terminal), or null for any other key. */
export function demoKeyAction(key: string): DemoKeyAction | null {
  switch (key) {
    case 'c':
    case 'C':
      return 'cut';
    case 'r':
    case 'R':
      return 'restore';
    case '\x03': // Ctrl-C in raw mode
    case '\x04': // Ctrl-D
      return 'stop';
    default:
      return null;
  }
}

/** What the keys drive: the test broker's cut()/restore(), and the clean stop. */
export interface DemoKeyTarget {
  cut(): void;
  restore(): void;
  stop(): void;
}

/** Listens to a terminal's key presses; returns the function that gives the terminal back. */
export function listenForDemoKeys(input: NodeJS.ReadStream, target: DemoKeyTarget): () => void {
  const onData = (chunk: Buffer): void => {
    // A paste or a fast typist can bring several keys in one chunk.
    for (const key of chunk.toString('utf8')) {
      const action = demoKeyAction(key);
      if (action !== null) target[action]();
    }
  };
  input.setRawMode(true);
  input.on('data', onData);
  input.resume();
  return () => {
    input.off('data', onData);
    input.setRawMode(false);
    input.pause();
  };
}
