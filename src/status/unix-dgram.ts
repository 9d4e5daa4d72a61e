// Typed access to `unix-dgram` (a CommonJS native module without type declarations): Node's own
// dgram has no AF_UNIX datagram sockets, which sd_notify needs.

import { createRequire } from 'node:module';

export interface UnixDgramSocket {
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): this;
  on(event: 'listening' | 'connect' | 'writable', listener: () => void): this;
  on(event: 'message', listener: (msg: Buffer, rinfo: { size: number; path?: string }) => void): this;
  on(event: 'congestion', listener: (msg: Buffer) => void): this;
  bind(path: string): void;
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
  close(): void;
}

interface UnixDgramModule {
  createSocket(type: 'unix_dgram', listener?: (msg: Buffer) => void): UnixDgramSocket;
}

/** Loads the native module on first use, so nothing is loaded when NOTIFY_SOCKET is unset. */
export function createUnixDgramSocket(): UnixDgramSocket {
  const require = createRequire(import.meta.url);
  const mod = require('unix-dgram') as UnixDgramModule;
  return mod.createSocket('unix_dgram');
}
