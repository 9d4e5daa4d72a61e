// One modbus-serial client for one bus (a TCP connection or an RTU serial port): open with a
// deadline, one read at a time, and a clear verdict when the line drops. The bus (bus.ts) owns the
// link and decides about retries, backoff and reconnects; this file only speaks the protocol.

import ModbusSerial from 'modbus-serial';
import type { BusConfig, TableName } from '../../config/schema.js';
import type { Clock } from '../../types.js';

// Under NodeNext ESM the CommonJS module object is the default import; the class is on `.default`.
const ModbusRTU = ModbusSerial.default;
type Client = InstanceType<typeof ModbusRTU>;

export type ReadFailureKind = 'timeout' | 'exception' | 'crc' | 'disconnected' | 'frame' | 'backoff';

/** A failed read; `message` says what happened and never holds a register value. */
export class ReadFailure extends Error {
  readonly kind: ReadFailureKind;
  readonly exceptionCode: number | undefined;

  constructor(kind: ReadFailureKind, message: string, exceptionCode?: number) {
    super(message);
    this.name = 'ReadFailure';
    this.kind = kind;
    this.exceptionCode = exceptionCode;
  }
}

const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'slave device failure',
  5: 'acknowledge',
  6: 'slave device busy',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** Turns whatever modbus-serial or the OS threw into a ReadFailure. */
export function classify(err: unknown, timeoutMs: number): ReadFailure {
  if (err instanceof ReadFailure) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    message?: unknown;
    errno?: unknown;
    code?: unknown;
    modbusCode?: unknown;
  };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (typeof e.modbusCode === 'number') {
    const name = EXCEPTIONS[e.modbusCode] ?? 'unknown exception';
    return new ReadFailure('exception', `Modbus exception ${e.modbusCode} (${name})`, e.modbusCode);
  }
  if (message === 'CRC error') return new ReadFailure('crc', 'CRC error in the response');
  if (e.errno === 'ETIMEDOUT' || message === 'Timed out') {
    return new ReadFailure('timeout', `no response within ${timeoutMs} ms`);
  }
  if (message.startsWith('Data length error')) return new ReadFailure('frame', 'malformed response frame');
  return new ReadFailure('disconnected', `not connected: ${message.slice(0, 120)}`);
}

/** Where the bus is: `tcp 10.0.0.5:502` or `rtu /dev/ttyUSB0`. */
export function describeEndpoint(bus: BusConfig): string {
  if (bus.tcp !== undefined) return `tcp ${bus.tcp.host}:${bus.tcp.port}`;
  if (bus.rtu !== undefined) return `rtu ${bus.rtu.port}`;
  return 'no endpoint';
}

export class ModbusLink {
  private readonly bus: BusConfig;
  private readonly clock: Clock;
  private client: Client | null = null;
  /** Rejects the read in flight when the line drops, instead of waiting for its timeout. */
  private dropped: ((f: ReadFailure) => void) | null = null;

  constructor(bus: BusConfig, clock: Clock) {
    this.bus = bus;
    this.clock = clock;
  }

  get isOpen(): boolean {
    return this.client !== null && this.client.isOpen;
  }

  get isSerial(): boolean {
    return this.bus.rtu !== undefined;
  }

  /** Connects (TCP) or opens the port (RTU), giving up after the bus timeout (at least 1 s). */
  async open(): Promise<void> {
    await this.close();
    const client = new ModbusRTU();
    // modbus-serial re-emits port errors; without a listener an unplugged adapter would crash us.
    client.on('error', () => this.onDrop(client, 'port error'));
    client.on('close', () => this.onDrop(client, 'connection closed'));
    const deadline = Math.max(1000, this.bus.timeout);
    const { tcp, rtu } = this.bus;
    let connecting: Promise<void>;
    if (tcp !== undefined) {
      connecting = client.connectTCP(tcp.host, { port: tcp.port });
    } else if (rtu !== undefined) {
      connecting = client.connectRTUBuffered(rtu.port, {
        baudRate: rtu.baudRate,
        parity: rtu.parity,
        dataBits: rtu.dataBits,
        stopBits: rtu.stopBits,
      });
    } else {
      throw new ReadFailure('disconnected', 'the bus has neither rtu nor tcp');
    }
    try {
      await this.withDeadline(connecting, deadline, () => new Error(`no connection within ${deadline} ms`));
    } catch (err) {
      await shut(client, tcp !== undefined);
      throw err;
    }
    client.setTimeout(this.bus.timeout);
    this.client = client;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (client !== null) await shut(client, this.bus.tcp !== undefined);
  }

  /** One read request; words for registers, booleans for bits. */
  async read(unitId: number, table: TableName, start: number, count: number): Promise<number[] | boolean[]> {
    const client = this.client;
    if (client === null || !client.isOpen) {
      throw new ReadFailure('disconnected', 'not connected');
    }
    client.setID(unitId);
    const request = async (): Promise<number[] | boolean[]> => {
      switch (table) {
        case 'coil':
          return (await client.readCoils(start, count)).data.slice(0, count);
        case 'discrete':
          return (await client.readDiscreteInputs(start, count)).data.slice(0, count);
        case 'holding':
          return (await client.readHoldingRegisters(start, count)).data;
        case 'input':
          return (await client.readInputRegisters(start, count)).data;
      }
    };
    const dropped = new Promise<never>((_, reject) => {
      this.dropped = reject;
    });
    try {
      // modbus-serial times out by itself; the extra margin only guards against a lost callback.
      return await this.withDeadline(
        Promise.race([request(), dropped]),
        this.bus.timeout + 500,
        () => new ReadFailure('timeout', `no response within ${this.bus.timeout} ms`),
      );
    } catch (err) {
      const failure = classify(err, this.bus.timeout);
      if (failure.kind === 'disconnected' || failure.kind === 'frame') await this.close();
      throw failure;
    } finally {
      this.dropped = null;
      dropped.catch(() => undefined);
    }
  }

  private onDrop(client: Client, why: string): void {
    if (client !== this.client) return;
    this.client = null;
    this.dropped?.(new ReadFailure('disconnected', why));
    void shut(client, this.bus.tcp !== undefined);
  }

  private withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => reject(onTimeout()), ms);
      p.then(
        (v) => {
          this.clock.clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          this.clock.clearTimeout(timer);
          reject(asError(err));
        },
      );
    });
  }
}

/** modbus-serial rejects with plain objects (errno, modbusCode); keep those fields. */
function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  const fields = typeof err === 'object' && err !== null ? err : {};
  const message = 'message' in fields && typeof fields.message === 'string' ? fields.message : String(err);
  return Object.assign(new Error(message), fields);
}

/** Releases a client whatever state it is in; never throws. */
function shut(client: Client, isTcp: boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      // TcpPort has destroy() (immediate); the RTU port only has close().
      if (isTcp) client.destroy(() => resolve());
      else client.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
