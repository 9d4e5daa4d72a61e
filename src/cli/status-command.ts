import { queryStatus } from '../status/server.js';
import { formatStatus } from '../status/format.js';
import { loadFromArg } from './config-arg.js';

/** `edgegw status`: ask the running daemon through its status socket (exit 69 if none answers). */
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
  process.once('SIGINT', () => (stop = true));
  while (!stop) {
    const text = await show();
    process.stdout.write(o.json === true ? text : `\x1b[2J\x1b[H${text}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
