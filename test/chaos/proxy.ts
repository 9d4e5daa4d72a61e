// A TCP chaos proxy between the daemon and the broker. It sees only TLS bytes, so its faults are
// the network's: stall (bytes held, connections open), cut (every connection destroyed in the middle
// of a chunk: the peer sees a torn TLS record), trickle (a byte rate in each direction), flap
// (cut every `periodMs`). Withheld PUBACKs need MQTT frames: that is the broker's gate.

import net from 'node:net';
import type { AddressInfo } from 'node:net';

type Mode = { kind: 'pass' } | { kind: 'stall' } | { kind: 'trickle'; bytesPerSec: number };

interface Pipe {
  from: net.Socket;
  to: net.Socket;
  queue: Buffer[];
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  pipes: Pipe[];
}

export class ChaosProxy {
  private server: net.Server | null = null;
  private readonly links = new Set<Link>();
  private mode: Mode = { kind: 'pass' };
  private tick: NodeJS.Timeout | null = null;
  private flapTimer: NodeJS.Timeout | null = null;
  private tearNext: (() => void) | null = null;
  /** Connections accepted, and connections this proxy cut. */
  accepted = 0;
  cuts = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(port = 0): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    // One pump for stall and trickle: it moves what each pipe holds as far as the mode allows.
    this.tick = setInterval(() => this.pump(0.05), 50);
  }

  pass(): void {
    this.mode = { kind: 'pass' };
    this.pump(Infinity);
  }

  stall(): void {
    this.mode = { kind: 'stall' };
  }

  trickle(bytesPerSec: number): void {
    this.mode = { kind: 'trickle', bytesPerSec };
  }

  /** Destroys every connection after forwarding part of what each pipe holds or next receives. */
  cut(): void {
    for (const link of this.links) {
      for (const p of link.pipes) {
        const head = p.queue.shift();
        if (head !== undefined && head.length > 1 && !p.to.destroyed)
          p.to.write(head.subarray(0, head.length >> 1));
      }
      this.cuts++;
      link.client.destroy();
      link.upstream.destroy();
    }
    this.links.clear();
  }

  /**
   * Waits for the next chunk in either direction, forwards its first half only, then cuts: a TLS
   * record torn in the middle. Cuts anyway after `ms` of silence.
   */
  cutMidPacket(ms = 3000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = (): void => {
        clearTimeout(timer);
        this.tearNext = null;
        this.cut();
        resolve();
      };
      this.tearNext = done;
    });
  }

  /** Cuts every `periodMs` until `steady()`. */
  flap(periodMs: number): void {
    this.steady();
    this.flapTimer = setInterval(() => this.cut(), periodMs);
  }

  steady(): void {
    if (this.flapTimer !== null) clearInterval(this.flapTimer);
    this.flapTimer = null;
  }

  async stop(): Promise<void> {
    this.steady();
    if (this.tick !== null) clearInterval(this.tick);
    this.tick = null;
    for (const link of this.links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    this.links.clear();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.target.port, this.target.host);
    const link: Link = {
      client,
      upstream,
      pipes: [
        { from: client, to: upstream, queue: [] },
        { from: upstream, to: client, queue: [] },
      ],
    };
    this.links.add(link);
    const close = (): void => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    for (const p of link.pipes) {
      p.from.on('data', (chunk: Buffer) => {
        const tear = this.tearNext;
        if (tear !== null && chunk.length > 1) {
          p.to.write(chunk.subarray(0, chunk.length >> 1));
          tear();
          return;
        }
        if (this.mode.kind === 'pass' && p.queue.length === 0) p.to.write(chunk);
        else p.queue.push(chunk);
      });
      p.from.on('error', close);
      p.from.on('close', close);
    }
  }

  private pump(seconds: number): void {
    const m = this.mode;
    if (m.kind === 'stall') return;
    for (const link of this.links) {
      for (const p of link.pipes) {
        let budget = m.kind === 'trickle' ? Math.max(1, Math.floor(m.bytesPerSec * seconds)) : Infinity;
        while (budget > 0 && p.queue.length > 0 && !p.to.destroyed) {
          const head = p.queue[0]!;
          if (head.length <= budget) {
            p.queue.shift();
            p.to.write(head);
            budget -= head.length;
          } else {
            p.to.write(head.subarray(0, budget));
            p.queue[0] = head.subarray(budget);
            budget = 0;
          }
        }
      }
    }
  }
}
