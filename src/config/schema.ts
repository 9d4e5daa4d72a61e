// The one source of truth for the site configuration: this schema yields the TypeScript types
// (StaticDecode), the defaults (Value.Default), and config/site.schema.json for editors.
// Durations and sizes are written as strings and decoded to ms and bytes.

import { Type, type StaticDecode, type StaticEncode } from '@sinclair/typebox';
import {
  DURATION_PATTERN,
  type Range,
  SIZE_PATTERN,
  formatDuration,
  formatSize,
  parseDuration,
  parseSize,
} from './units.js';

/**
 * A duration with its allowed range, written like the value (`['10ms', '24h']`). Every duration has
 * one: 0ms spins a timer, and anything past 2^31 ms overflows Node's timers (they fire at once).
 * The range is the custom keyword `range`, checked by ranges.ts and shown in the README reference.
 */
const Duration = (def: string | undefined, description: string, range: Range) =>
  Type.Transform(
    Type.String({
      pattern: DURATION_PATTERN,
      description,
      range,
      ...(def === undefined ? {} : { default: def }),
    }),
  )
    .Decode((s) => parseDuration(s))
    .Encode((ms) => formatDuration(ms));

/** A size; its range (`['1KiB', '128KiB']`) works as for durations. */
const Size = (def: string, description: string, range?: Range) =>
  Type.Transform(
    Type.String({
      pattern: SIZE_PATTERN,
      description,
      default: def,
      ...(range === undefined ? {} : { range }),
    }),
  )
    .Decode((s) => parseSize(s))
    .Encode((b) => formatSize(b));

/**
 * A file or folder path: bounded like PATH_MAX, so no value is ever megabytes long. The custom
 * keyword `filePath` marks it: a remote change (fleet/settable.ts) never sets a path on the gateway.
 */
const Path = (opts: Parameters<typeof Type.String>[0]) =>
  Type.String({ minLength: 1, maxLength: 4096, filePath: true, ...opts });

/** Free text (names, units, hosts): short, so every check on it stays cheap. */
const Text = (maxLength: number, opts: Parameters<typeof Type.String>[0]) =>
  Type.String({ maxLength, ...opts });

const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T, description: string, extra = {}) =>
  Type.Object(props, { additionalProperties: false, description, ...extra });

/** IoT Core client ids: 1..128 characters, never starting with `$`. */
export const ID_PATTERN = '^[A-Za-z0-9_:-]{1,128}$';
export const SENSOR_ID_PATTERN = '^[A-Za-z0-9_.:-]{1,64}$';

const Gateway = Strict(
  {
    id: Type.String({ pattern: ID_PATTERN, description: 'Gateway id; also the MQTT client id.' }),
    profile: Type.Optional(
      Text(64, { description: 'Board profile: hw-profiles/<name>.yaml (pin and serial-port names).' }),
    ),
    dataDir: Path({ default: '/var/lib/edgegw', description: 'Folder of the queue database.' }),
  },
  'The gateway itself.',
);

const Limits = Strict(
  {
    publishesPerSecond: Type.Number({
      exclusiveMinimum: 0,
      maximum: 100_000,
      default: 100,
      description: 'Publish rate cap.',
    }),
    bytesPerSecond: Size('512KiB', 'Payload byte rate cap.', ['1KiB', '1GiB']),
    maxPayloadBytes: Size('128KiB', 'Largest MQTT payload (IoT Core allows 128 KiB).', ['1KiB', '128KiB']),
    inflight: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 16,
      description: 'Unacknowledged publishes.',
    }),
  },
  'Flow control: pace below the broker quotas.',
  { default: {} },
);

const Backoff = Strict(
  {
    // At least 100ms: IoT Core takes at most one CONNECT per second per client id.
    min: Duration('1s', 'First reconnect delay; at most backoff.max.', ['100ms', '10m']),
    max: Duration('2m', 'Largest reconnect delay.', ['100ms', '1h']),
  },
  'Reconnect backoff: exponential with full jitter.',
  { default: {} },
);

const Uplink = Strict(
  {
    url: Text(2048, { description: 'mqtts://host:port of the broker; no user:pass@.' }),
    alpn: Type.Optional(Text(255, { description: 'ALPN protocol, e.g. x-amzn-mqtt-ca on port 443.' })),
    ca: Path({ description: 'Path of the CA bundle that signs the broker certificate (PEM).' }),
    cert: Path({ description: 'Path of the device certificate (PEM).' }),
    key: Path({ description: 'Path of the device private key (PEM); mode 0600 or 0400.', secret: true }),
    topic: Text(1024, {
      default: 'dt/edgegw/{gateway}/telemetry',
      description: 'Topic; {gateway} is replaced by gateway.id.',
    }),
    // Wider than IoT Core's 30s..20m (MQTT allows up to 65535 s): a value outside that is clamped
    // into it with a warning (clamps.ts), as the broker would otherwise refuse or override it.
    keepalive: Duration(
      '60s',
      'MQTT keep-alive. AWS IoT Core accepts 30s..20m: a value outside is clamped into it, with a warning.',
      ['1s', '18h'],
    ),
    ackTimeout: Duration(
      '20s',
      'Longest wait for a PUBACK; then the uplink reconnects and resends what was unacknowledged.',
      ['1s', '10m'],
    ),
    // `protocol: 5` in YAML is a number; load.ts reads it as '5'.
    protocol: Type.Union([Type.Literal('3.1.1'), Type.Literal('5')], {
      default: '3.1.1',
      description:
        'MQTT version: 3.1.1, or 5 (the broker then says when it refuses a publish as over quota, and its Receive Maximum caps the in-flight window).',
    }),
    // Default none: IoT Rules SQL (and any consumer reading JSON) cannot read a compressed payload.
    compression: Type.Union([Type.Literal('none'), Type.Literal('deflate')], {
      default: 'none',
      description:
        'Payload compression: deflate sends each message as a zlib stream of its JSON (~4x more readings per byte); none keeps it readable by IoT Rules SQL.',
    }),
    limits: Limits,
    backoff: Backoff,
  },
  'The MQTT/TLS connection to AWS IoT Core.',
);

const Queue = Strict(
  {
    keyFile: Path({
      description: 'Path of the queue key from `edgegw keygen`; mode 0600 or 0400.',
      secret: true,
    }),
    previousKeyFiles: Type.Array(Path({}), {
      default: [],
      maxItems: 16,
      description:
        'Older queue keys after a rotation: they only open records sealed before it, until those are drained; mode 0600 or 0400.',
      secret: true,
    }),
    rotatedKeysDir: Type.Optional(
      Path({
        description:
          'Folder outside gateway.dataDir, writable by the daemon, where a rotate-queue-key job writes new queue keys (0600); the newest seals at once and after every start, the others open older records; keys no queued record needs any more are moved to its retired/ folder.',
      }),
    ),
    maxBytes: Size(
      '256MiB',
      'Largest size of the queue on disk, all its files counted (log, tables, tombstones).',
      ['1MiB', '1024GiB'],
    ),
    minFreeBytes: Size(
      '64MiB',
      'Free space the queue leaves on the filesystem (whenFull applies before); at most 1/8 of the filesystem is kept.',
      ['0B', '1024GiB'],
    ),
    whenFull: Type.Union([Type.Literal('drop-oldest'), Type.Literal('reject-new')], {
      default: 'drop-oldest',
      description: 'What to drop when the queue is full.',
    }),
    durability: Type.Union([Type.Literal('fsync'), Type.Literal('os')], {
      default: 'fsync',
      description: 'fsync: each commit survives power loss.',
    }),
    flush: Duration(
      '200ms',
      'Group-commit interval: the longest readings wait before their record is committed (while the uplink is not connected, 2 × flush − 50 ms).',
      ['10ms', '10s'],
    ),
    maxRecordReadings: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 2000,
      description: 'Most readings in one record.',
    }),
  },
  'The sealed on-disk queue.',
);

const Rtu = Strict(
  {
    port: Path({ description: 'Serial device or a board-profile alias such as serial0.' }),
    baudRate: Type.Integer({ minimum: 300, maximum: 921600, default: 9600, description: 'Baud rate.' }),
    parity: Type.Union([Type.Literal('none'), Type.Literal('even'), Type.Literal('odd')], {
      default: 'none',
      description: 'Parity.',
    }),
    dataBits: Type.Union([Type.Literal(7), Type.Literal(8)], { default: 8, description: 'Data bits.' }),
    stopBits: Type.Union([Type.Literal(1), Type.Literal(2)], { default: 1, description: 'Stop bits.' }),
  },
  'Modbus RTU over a serial line.',
);

const Tcp = Strict(
  {
    host: Text(253, { minLength: 1, description: 'Host name or address of the Modbus TCP device.' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 502, description: 'TCP port.' }),
  },
  'Modbus TCP.',
);

const Bus = Strict(
  {
    rtu: Type.Optional(Rtu),
    tcp: Type.Optional(Tcp),
    timeout: Duration('1s', 'Response timeout per request.', ['10ms', '60s']),
    retries: Type.Integer({ minimum: 0, maximum: 10, default: 1, description: 'Retries per request.' }),
    interFrameDelay: Duration(
      '5ms',
      'Silence between requests on the bus; a TCP bus that does not set it gets 0ms (the pause is an RS-485 need).',
      ['0ms', '1s'],
    ),
    maxGap: Type.Integer({
      minimum: 0,
      maximum: 124,
      default: 8,
      description: 'Largest address gap bridged when coalescing reads.',
    }),
  },
  'A Modbus bus: exactly one of rtu or tcp.',
);

const Table = Type.Union(
  [Type.Literal('coil'), Type.Literal('discrete'), Type.Literal('holding'), Type.Literal('input')],
  { description: 'Modbus table.' },
);
const DataType = Type.Union(
  [
    Type.Literal('bool'),
    Type.Literal('int16'),
    Type.Literal('uint16'),
    Type.Literal('int32'),
    Type.Literal('uint32'),
    Type.Literal('int64'),
    Type.Literal('uint64'),
    Type.Literal('float32'),
    Type.Literal('float64'),
  ],
  { description: 'Register data type.' },
);
const Order = (d: string) =>
  Type.Union([Type.Literal('big'), Type.Literal('little')], { default: 'big', description: d });

/** Poll periods: below 10ms a poll cannot finish before the next; a day is the longest useful. */
const EVERY: Range = ['10ms', '24h'];

const common = {
  id: Type.String({ pattern: SENSOR_ID_PATTERN, description: 'Sensor id, unique in the site.' }),
  unit: Type.Optional(Text(32, { description: 'Engineering unit, for display (e.g. degC).' })),
  decimals: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 12, description: 'Round the value to this many decimals.' }),
  ),
};

export const ModbusSensor = Strict(
  {
    ...common,
    bus: Text(64, { description: 'Name of a bus in `buses`.' }),
    unitId: Type.Integer({ minimum: 0, maximum: 255, default: 1, description: 'Modbus unit (slave) id.' }),
    table: Table,
    address: Type.Integer({ minimum: 0, maximum: 65535, description: 'Zero-based protocol address.' }),
    type: Type.Optional(DataType),
    wordOrder: Order('big: first register holds the most significant word.'),
    byteOrder: Order('big: high byte first in each register.'),
    scale: Type.Number({ default: 1, description: 'value = raw * scale + offset' }),
    offset: Type.Number({ default: 0, description: 'value = raw * scale + offset' }),
    every: Duration('1s', 'Poll period.', EVERY),
  },
  'A Modbus register or bit.',
);

export const GpioSensor = Strict(
  {
    ...common,
    gpio: Strict(
      {
        pin: Type.Union([Type.String({ maxLength: 64 }), Type.Integer({ minimum: 0, maximum: 65535 })], {
          description: 'Pin name from the board profile (GPIO17) or a sysfs GPIO number.',
        }),
        edge: Type.Union(
          [Type.Literal('rising'), Type.Literal('falling'), Type.Literal('both'), Type.Literal('none')],
          { default: 'both', description: 'Edges that produce readings or counts.' },
        ),
        debounce: Duration('0ms', 'Ignore changes shorter than this.', ['0ms', '10s']),
        activeLow: Type.Boolean({ default: false, description: 'Invert the pin value.' }),
        mode: Type.Union([Type.Literal('level'), Type.Literal('counter')], {
          default: 'level',
          description: 'level: a reading per edge; counter: pulses counted per `every`.',
        }),
      },
      'A GPIO input.',
    ),
    every: Type.Optional(Duration(undefined, 'counter: count interval; level: periodic re-read.', EVERY)),
  },
  'A GPIO input pin.',
);

export const SimSensor = Strict(
  {
    ...common,
    sim: Strict(
      {
        wave: Type.Union([Type.Literal('sine'), Type.Literal('counter'), Type.Literal('random')], {
          description: 'sine, counter (0, 1, 2, … one per poll) or random.',
        }),
        min: Type.Number({ default: 0, description: 'Lowest value.' }),
        max: Type.Number({ default: 100, description: 'Highest value.' }),
        period: Duration('60s', 'Sine period.', ['10ms', '168h']),
      },
      'A simulated signal.',
    ),
    every: Duration('1s', 'Poll period.', EVERY),
  },
  'A simulated sensor (demo, tests).',
);

export const Sensor = Type.Union([ModbusSensor, GpioSensor, SimSensor]);

const Status = Strict(
  {
    socket: Path({ default: '/run/edgegw/status.sock', description: 'Control socket (mode 0660).' }),
    metrics: Type.Optional(Text(300, { description: 'host:port of a Prometheus endpoint.' })),
  },
  'Status socket and metrics.',
  { default: {} },
);

const ClockSettings = Strict(
  {
    source: Type.Union(
      [
        Type.Literal('auto'),
        Type.Literal('systemd'),
        Type.Literal('timedatectl'),
        Type.Literal('jump'),
        Type.Literal('off'),
      ],
      {
        default: 'auto',
        description:
          'What says the wall clock is good: systemd (clock.syncFile exists), timedatectl, jump (only a step counts), off (trusted from the start); auto: systemd when timesyncd runs, else a clock later than the build.',
      },
    ),
    syncFile: Path({
      default: '/run/systemd/timesync/synchronized',
      description: 'The file systemd-timesyncd creates once synchronised.',
    }),
    poll: Duration('5s', 'How often the source is asked while the clock is not known good.', [
      '100ms',
      '10m',
    ]),
    jump: Duration('10s', 'A step of the wall clock larger than this counts as the sync.', ['1s', '24h']),
    hold: Duration(
      '15m',
      'Records of this boot wait this long for the sync before they are published with quality unsynced.',
      ['0ms', '24h'],
    ),
  },
  'True timestamps on a board without a battery-backed clock.',
  { default: {} },
);

/** AWS provisioning template names: 1..36 of [0-9A-Za-z_-] (they become a topic level). */
export const TEMPLATE_PATTERN = '^[0-9A-Za-z_-]{1,36}$';

const Identity = Strict(
  {
    thingNameAsGatewayId: Type.Boolean({
      default: false,
      description:
        'edgegw provision writes the thing name its template returns into gateway.id of this file.',
    }),
    replyTimeout: Duration('10s', 'Longest wait for each fleet provisioning reply.', ['100ms', '5m']),
    rotation: Strict(
      {
        template: Type.Optional(
          Type.String({
            pattern: TEMPLATE_PATTERN,
            description:
              'Provisioning template that registers (activates) a rotated certificate; without one the new certificate is only created (see the README).',
          }),
        ),
        parameters: Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), {
          default: {},
          description: 'Parameters sent to the rotation template.',
        }),
        proofTopic: Text(256, {
          default: 'edgegw/{gateway}/identity',
          description:
            'QoS 1 topic the proof publish goes to on the new certificate ({gateway} = gateway.id); the policy must allow it.',
        }),
        proofTimeout: Duration('30s', 'Longest wait for CONNACK and PUBACK on the new certificate.', [
          '1s',
          '10m',
        ]),
      },
      'Certificate rotation (edgegw rotate-certificate, or the rotate-certificate job).',
      { default: {} },
    ),
  },
  'Device identity: fleet provisioning by claim and certificate rotation.',
  { default: {} },
);

const Log = Strict(
  {
    level: Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { default: 'info', description: 'pino log level.' },
    ),
  },
  'Logging.',
  { default: {} },
);

/** Key paths (or their parents) a remote change may set: see src/fleet/settable.ts. */
const LOCAL_ONLY_PATTERN =
  '^(sensors|buses|uplink\\.limits|uplink\\.backoff|queue\\.flush|queue\\.whenFull|log\\.level)(\\.[A-Za-z0-9_.:-]+)?$';

const FleetShadow = Strict(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9:_-]{1,64}$',
      description: 'Named shadow of the thing gateway.id that holds the remote configuration.',
    }),
    localOnly: Type.Array(Type.String({ pattern: LOCAL_ONLY_PATTERN, maxLength: 200 }), {
      default: [],
      maxItems: 64,
      description:
        'Remotely settable key paths the site file keeps (e.g. log.level, buses.plc): a desired value for them is refused.',
    }),
    revertAfter: Duration(
      '60s',
      'A remote change to uplink.* that has not proven the broker reachable within this is reverted.',
      ['5s', '30m'],
    ),
    // At least a minute: each update is a metered shadow operation and bumps the shadow's version;
    // IoT Core allows 20 shadow requests per second per thing, far above this.
    reportInterval: Duration(
      '15m',
      'How often reported.edgegw.health is refreshed between changes, only when it changed (and only while connected).',
      ['1m', '24h'],
    ),
  },
  'Remote configuration through an AWS IoT named Device Shadow.',
);

const FleetDefender = Strict(
  {
    interval: Duration('5m', 'How often the Device Defender custom metrics are sent (AWS: at least 5m).', [
      '5m',
      '24h',
    ]),
  },
  'Device Defender custom metrics (backlog, drops, quarantined, reconnects).',
);

const Fleet = Strict(
  {
    shadow: Type.Optional(FleetShadow),
    jobs: Type.Boolean({
      default: false,
      description: 'Follow AWS IoT Jobs (notify-next, start-next) and run their operations.',
    }),
    defender: Type.Optional(FleetDefender),
  },
  'Fleet features through AWS IoT Core (all off by default).',
  { default: {} },
);

export const SiteSchema = Type.Object(
  {
    gateway: Gateway,
    uplink: Uplink,
    queue: Queue,
    buses: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Bus, {
      default: {},
      description: 'Modbus buses by name.',
    }),
    sensors: Type.Array(Sensor, { default: [], description: 'The sensors to poll.' }),
    status: Status,
    clock: ClockSettings,
    identity: Identity,
    log: Log,
    fleet: Fleet,
  },
  {
    additionalProperties: false,
    title: 'edgegw site configuration',
    $id: 'https://edgegw.local/site.schema.json',
  },
);

export type SiteConfig = StaticDecode<typeof SiteSchema>;
export type SiteConfigInput = StaticEncode<typeof SiteSchema>;
export type ModbusSensorConfig = StaticDecode<typeof ModbusSensor>;
export type GpioSensorConfig = StaticDecode<typeof GpioSensor>;
export type SimSensorConfig = StaticDecode<typeof SimSensor>;
export type SensorConfig = ModbusSensorConfig | GpioSensorConfig | SimSensorConfig;
export type BusConfig = SiteConfig['buses'][string];
export type DataTypeName = NonNullable<ModbusSensorConfig['type']>;
export type TableName = ModbusSensorConfig['table'];

export const isModbusSensor = (s: SensorConfig): s is ModbusSensorConfig => 'bus' in s;
export const isGpioSensor = (s: SensorConfig): s is GpioSensorConfig => 'gpio' in s;
export const isSimSensor = (s: SensorConfig): s is SimSensorConfig => 'sim' in s;
