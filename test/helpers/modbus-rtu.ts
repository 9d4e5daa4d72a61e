// Modbus RTU for tests: a socat pty pair (the driver opens one end, the slave the other) and a
// small RTU slave on the serialport package, with CRC16 and fault injection (silence, exception 2,
// a bad CRC), per unit. modbus-serial 8 does ship a ServerSerial, but it always writes a correct
// CRC, so it cannot play a device with a noisy line.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { waitFor } from './modbus.js';

export interface PtyPair {
  /** The end the driver opens (like /dev/ttyUSB0). */
  readonly driverPath: string;
  /** The end the slave opens. */
  readonly slavePath: string;
  /** Kills socat: both ends vanish, like an unplugged USB adapter. */
  stop(): Promise<void>;
}

export async function startPtyPair(dir: string): Promise<PtyPair> {
  const driverPath = join(dir, 'ttyDRIVER');
  const slavePath = join(dir, 'ttySLAVE');
  const child: ChildProcess = spawn(
    'socat',
    ['-d', '-d', `pty,raw,echo=0,link=${driverPath}`, `pty,raw,echo=0,link=${slavePath}`],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor('socat ptys', () => existsSync(driverPath) && existsSync(slavePath), 5000);
  return {
    driverPath,
    slavePath,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export type RtuMode = 'ok' | 'silent' | 'exception2' | 'badCrc';

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first. */
export function crc16(buf: Uint8Array): number {
  let crc = 0xffff;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

function withCrc(body: number[], bad = false): Buffer {
  const b = Buffer.alloc(body.length + 2);
  Buffer.from(body).copy(b);
  b.writeUInt16LE(crc16(b.subarray(0, body.length)) ^ (bad ? 0x5a5a : 0), body.length);
  return b;
}

export class RtuSlave {
  readonly registers = { holding: new Uint16Array(65536), input: new Uint16Array(65536) };
  readonly bits = { coil: new Uint8Array(65536), discrete: new Uint8Array(65536) };
  requests = 0;
  private readonly port: SerialPort;
  private readonly units: Set<number>;
  private readonly modes = new Map<number, RtuMode>();
  private buf = Buffer.alloc(0);

  constructor(path: string, units: number[]) {
    this.units = new Set(units);
    this.port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
    this.port.on('error', () => undefined); // the pty vanishing is part of the tests
    this.port.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => this.port.open((err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.port.isOpen) return resolve();
      this.port.close(() => resolve());
    });
  }

  setMode(mode: RtuMode, unit?: number): void {
    for (const u of unit === undefined ? this.units : [unit]) this.modes.set(u, mode);
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    // Read requests (FC 1–4) are always 8 bytes: unit, fc, address, count, CRC.
    while (this.buf.length >= 8) {
      const frame = this.buf.subarray(0, 8);
      if (frame.readUInt16LE(6) !== crc16(frame.subarray(0, 6))) {
        this.buf = this.buf.subarray(1); // resynchronise
        continue;
      }
      this.buf = this.buf.subarray(8);
      this.answer(frame);
    }
  }

  private answer(frame: Buffer): void {
    const unit = frame[0]!;
    const fc = frame[1]!;
    const start = frame.readUInt16BE(2);
    const count = frame.readUInt16BE(4);
    if (!this.units.has(unit)) return;
    this.requests += 1;
    const mode = this.modes.get(unit) ?? 'ok';
    if (mode === 'silent') return;
    if (mode === 'exception2') {
      this.port.write(withCrc([unit, fc | 0x80, 2]));
      return;
    }
    const body = [unit, fc];
    if (fc === 3 || fc === 4) {
      const regs = fc === 3 ? this.registers.holding : this.registers.input;
      body.push(count * 2);
      for (let i = 0; i < count; i++) body.push(regs[start + i]! >> 8, regs[start + i]! & 0xff);
    } else if (fc === 1 || fc === 2) {
      const bits = fc === 1 ? this.bits.coil : this.bits.discrete;
      const bytes = Math.ceil(count / 8);
      body.push(bytes);
      for (let i = 0; i < bytes; i++) {
        let byte = 0;
        for (let j = 0; j < 8 && i * 8 + j < count; j++) byte |= (bits[start + i * 8 + j]! & 1) << j;
        body.push(byte);
      }
    } else {
      this.port.write(withCrc([unit, fc | 0x80, 1]));
      return;
    }
    this.port.write(withCrc(body, mode === 'badCrc'));
  }
}
