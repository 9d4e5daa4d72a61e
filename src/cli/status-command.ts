import { EdgegwError } from '../errors.js';
import { queryStatus } from '../status/server.js';
import { formatStatus, frameLines, watchFrame } from '../status/format.js';
import { loadFromArg } from './config-arg.js';

const WATCH_EVERY_MS = 1000;

/**
 * `edgegw status`: ask the running daemon through its status socket (exit 69 if none answers).
 * `--watch` redraws in place on a terminal (plain blocks, or one JSON document a line, otherwise)
 * until Ctrl-C; a daemon that stops answering (a restart) is shown as such and asked again.
 */
export async function statusCommand(o: {
  config?: string;
  socket?: string;
  json?: boolean;
  watch?: boolean;
}): Promise<void> {
  const socket = o.socket ?? (await loadFromArg(o.config)).config.status.socket;
  const show = async () => {
    const s = await queryStatus(socket);
    return o.json === true ? `${JSON.stringify(s)}\n` : formatStatus(s);
  };
  if (o.watch !== true) {
    process.stdout.write(await show());
    return;
  }
  let stop = false;
  let wake: (() => void) | null = null;
  process.once('SIGINT', () => {
    stop = true;
    wake?.();
  });
  let previous = 0;
  while (!stop) {
    let text: string;
    try {
      text = await show();
    } catch (err) {
      if (!(err instanceof EdgegwError)) throw err;
      text =
        o.json === true
          ? `${JSON.stringify({ error: err.code, message: err.message })}\n`
          : `edgegw: ${err.message} [${err.code}]\n`;
    }
    // Read each time: the terminal may have been resized.
    const tty = { isTTY: process.stdout.isTTY === true, columns: process.stdout.columns };
    process.stdout.write(o.json === true ? text : watchFrame(text, previous, tty));
    previous = frameLines(text);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, WATCH_EVERY_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
