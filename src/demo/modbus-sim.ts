// A Modbus TCP device for the demo and the tests, on modbus-serial's ServerTCP. It holds all four
// tables in memory, counts the requests it receives (read off the wire, one per MBAP frame), and
// injects faults: stop answering, answer exception 2, or drop every connection.
// Pre-loaded (unless `demo: false`) with the demo plant, updated every second:
//   holding 0..1  float32 boiler temperature, drifting between 60 and 70 °C
//   holding 2     uint16 pump speed (rpm)
//   holding 4..5  uint32 energy counter in tenths of a kWh, increasing
//   coil 0        alarm, toggling every 30 s

import net from 'node:net';
import ModbusSerial from 'modbus-serial';
import { encodeValue } from '../sensors/modbus/decode.js';

export type SimTable = 'coil' | 'discrete' | 'holding' | 'input';
export type SimMode = 'ok' | 'silent' | 'exception2' | 'close';

export interface ModbusSimOptions {
  host?: string;
  /** 0 (default) = an ephemeral port. */
  port?: number;
  /** The only unit id answered; default: every unit. */
  unitId?: number;
  /** Run the demo plant (default true). */
  demo?: boolean;
}

export interface ModbusSim {
  readonly port: number;
  /** Requests received since start, answered or not. */
  readonly requests: number;
  /** Writes registers (words) or bits from `address` on. */
  set(table: SimTable, address: number, values: readonly number[] | readonly boolean[]): void;
  /** Reads back what the simulator holds (registers as words, bits as 0/1). */
  get(table: SimTable, address: number, count: number): number[];
  /** Makes addresses answer exception 2, like a device with holes in its register map. */
  unmap(table: SimTable, address: number, count: number): void;
  /** Fault injection for all units, or only for `unitId` ('close' always hits the connection). */
  setMode(mode: SimMode, unitId?: number): void;
  close(): Promise<void>;
}

interface ServerLike {
  socks: Map<net.Socket, 0>;
  close(cb: (err: Error | null) => void): void;
  on(
    event: 'initialized' | 'serverError' | 'error' | 'socketError',
    cb: (err: Error | null) => void,
  ): unknown;
}

const DEMO_TICK_MS = 1000;
// ServerTCP answers an exception with the code of an error's `modbusErrorCode`.
const illegalAddress = (): Error => Object.assign(new Error('Illegal data address'), { modbusErrorCode: 2 });
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

export async function startModbusSimulator(opts: ModbusSimOptions = {}): Promise<ModbusSim> {
  const host = opts.host ?? '127.0.0.1';
  const memory: Record<SimTable, Uint16Array> = {
    coil: new Uint16Array(65536),
    discrete: new Uint16Array(65536),
    holding: new Uint16Array(65536),
    input: new Uint16Array(65536),
  };
  const unmapped: Record<SimTable, Uint8Array> = {
    coil: new Uint8Array(65536),
    discrete: new Uint8Array(65536),
    holding: new Uint8Array(65536),
    input: new Uint8Array(65536),
  };
  let globalMode: SimMode = 'ok';
  const unitModes = new Map<number, SimMode>();
  let requests = 0;
  const modeOf = (unit: number): SimMode =>
    globalMode !== 'ok' ? globalMode : (unitModes.get(unit) ?? 'ok');

  // Every getter goes through here: it answers, stays silent or throws exception 2.
  const one = (table: SimTable, addr: number, unit: number): number | Promise<number> => {
    const mode = modeOf(unit);
    if (mode === 'silent' || mode === 'close') return never();
    if (mode === 'exception2' || unmapped[table][addr] === 1) throw illegalAddress();
    return memory[table][addr] ?? 0;
  };
  const many = (table: SimTable, addr: number, len: number, unit: number): (number | Promise<number>)[] =>
    Array.from({ length: len }, (_, i) => one(table, addr + i, unit));
  const vector = {
    getCoil: (addr: number, unit: number) => bit(one('coil', addr, unit)),
    getDiscreteInput: (addr: number, unit: number) => bit(one('discrete', addr, unit)),
    getHoldingRegister: (addr: number, unit: number) => one('holding', addr, unit),
    getInputRegister: (addr: number, unit: number) => one('input', addr, unit),
    getMultipleHoldingRegisters: (addr: number, len: number, unit: number) =>
      many('holding', addr, len, unit),
    getMultipleInputRegisters: (addr: number, len: number, unit: number) => many('input', addr, len, unit),
  };

  const { server, port, raw } = await listen(host, opts.port ?? 0, vector, opts.unitId);
  raw.on('connection', (sock: net.Socket) => {
    if (globalMode === 'close') {
      sock.destroy();
      return;
    }
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 7 && buf.length >= 6 + buf.readUInt16BE(4)) {
        requests += 1;
        buf = buf.subarray(6 + buf.readUInt16BE(4));
      }
    });
  });
  server.on('socketError', () => undefined); // a client that vanishes is not our problem
  server.on('error', () => undefined);

  const set = (table: SimTable, address: number, values: readonly number[] | readonly boolean[]): void => {
    values.forEach((v: number | boolean, i: number) => {
      memory[table][address + i] = typeof v === 'boolean' ? (v ? 1 : 0) : v & 0xffff;
    });
  };
  let demoTimer: NodeJS.Timeout | null = null;
  if (opts.demo !== false) demoTimer = startDemoPlant(set);

  return {
    port,
    get requests() {
      return requests;
    },
    set,
    unmap: (table, address, count) => unmapped[table].fill(1, address, address + count),
    get: (table, address, count) => Array.from(memory[table].subarray(address, address + count)),
    setMode(mode: SimMode, unitId?: number) {
      if (unitId === undefined || mode === 'close') globalMode = mode;
      if (unitId !== undefined) {
        if (mode === 'ok') unitModes.delete(unitId);
        else if (mode !== 'close') unitModes.set(unitId, mode);
      }
      if (mode === 'ok' && unitId === undefined) unitModes.clear();
      if (mode === 'close') for (const sock of server.socks.keys()) sock.destroy();
    },
    close() {
      if (demoTimer !== null) clearInterval(demoTimer);
      return new Promise<void>((resolve) => {
        for (const sock of server.socks.keys()) sock.destroy();
        server.close(() => resolve());
      });
    },
  };
}

function bit(v: number | Promise<number>): boolean | Promise<boolean> {
  return typeof v === 'number' ? v !== 0 : v.then((n) => n !== 0);
}

/** ServerTCP treats port 0 as "default 502", so find a free port first (and retry if taken). */
async function listen(
  host: string,
  wanted: number,
  vector: object,
  unitId: number | undefined,
): Promise<{ server: ServerLike; port: number; raw: net.Server }> {
  for (let attempt = 0; ; attempt++) {
    const port = wanted !== 0 ? wanted : await freePort(host);
    const server = new ModbusSerial.ServerTCP(vector, {
      host,
      port,
      unitID: unitId ?? 255,
    }) as unknown as ServerLike;
    const err = await new Promise<Error | null>((resolve) => {
      server.on('initialized', () => resolve(null));
      server.on('serverError', (e) => resolve(e ?? new Error('server error')));
    });
    if (err === null) {
      // ServerTCP keeps its net.Server private; the request counter and 'close' mode need it.
      const raw = (server as unknown as { _server: net.Server })._server;
      return { server, port, raw };
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (wanted !== 0 || attempt >= 4) throw err;
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const addr = probe.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** The demo plant: plausible values that move, so the demo shows live data. */
function startDemoPlant(
  set: (table: SimTable, address: number, values: readonly number[] | readonly boolean[]) => void,
): NodeJS.Timeout {
  const f32 = { type: 'float32', wordOrder: 'big', byteOrder: 'big' } as const;
  const u32 = { type: 'uint32', wordOrder: 'big', byteOrder: 'big' } as const;
  const started = Date.now();
  let energyTenths = 123_450;
  const update = (): void => {
    const t = (Date.now() - started) / 1000;
    const temp = 65 + 4 * Math.sin((2 * Math.PI * t) / 120) + (Math.random() - 0.5);
    set('holding', 0, encodeValue(Math.round(temp * 10) / 10, f32));
    set('holding', 2, [Math.round(1450 + 20 * Math.sin((2 * Math.PI * t) / 45))]);
    energyTenths += 1 + Math.floor(Math.random() * 3);
    set('holding', 4, encodeValue(energyTenths, u32));
    set('coil', 0, [Math.floor(t / 30) % 2 === 1]);
  };
  update();
  const timer = setInterval(update, DEMO_TICK_MS);
  timer.unref();
  return timer;
}
