// Every error a user can meet, with a stable code. Logs and `edgegw status` show the code; the
// README's error table is checked against this list by a test.

export const ErrorCodes = {
  EDGEGW_E_CONFIG: 'The site configuration is invalid; the message names file:line:col and the key.',
  EDGEGW_E_CONFIG_READ: 'The configuration file cannot be read.',
  EDGEGW_E_KEY_PERMS: 'A private key file is readable by group or others; chmod 600 it.',
  EDGEGW_E_KEY_READ: 'A key or certificate file cannot be read or has the wrong format.',
  EDGEGW_E_KEY_EXISTS: 'keygen refuses to overwrite an existing file.',
  EDGEGW_E_KEY_CREATE:
    'keygen (or provision) cannot create the key file (missing folder or no permission); the message says what to fix.',
  EDGEGW_E_QUEUE_OPEN: 'The queue database cannot be opened (in use by a running daemon, or damaged).',
  EDGEGW_E_QUEUE_FULL: 'The queue reached queue.maxBytes; readings were dropped by the whenFull policy.',
  EDGEGW_E_QUEUE_WRITE:
    'A queue write failed (disk full, I/O error); the readings it held are counted as dropped and its seq is never reused.',
  EDGEGW_E_QUEUE_TAMPERED: 'A queue record failed authentication and was quarantined.',
  EDGEGW_E_QUEUE_KEY:
    'The queue was sealed with a key the configuration does not hold (queue.keyFile, queue.previousKeyFiles); nothing was changed.',
  EDGEGW_E_QUEUE_DAMAGED:
    'The queue database is damaged and does not open; nothing was changed. Stop the daemon and run `edgegw queue repair`.',
  EDGEGW_E_UPLINK_CONNECT:
    'The MQTT/TLS connection to the broker failed or was lost (no route, reset, closed); backing off.',
  EDGEGW_E_UPLINK_TLS:
    'The TLS handshake failed for another reason than the classes below (e.g. the port does not speak TLS).',
  EDGEGW_E_UPLINK_TLS_CA:
    'The broker certificate is not signed by a CA in uplink.ca (AWS IoT Core: Amazon Root CA 1 with the -ats endpoint).',
  EDGEGW_E_UPLINK_TLS_EXPIRED:
    "The broker certificate has expired by the gateway's clock (shown): fix the clock if it is wrong, else the broker must renew it.",
  EDGEGW_E_UPLINK_TLS_NOT_YET_VALID:
    "The broker certificate is not valid yet by the gateway's clock (shown): the clock is probably behind; set it (NTP, RTC).",
  EDGEGW_E_UPLINK_TLS_HOSTNAME:
    'The broker certificate is not for the host in uplink.url (both named): correct the host.',
  EDGEGW_E_UPLINK_TLS_VERSION:
    'The broker offers no TLS version the gateway accepts (1.2 or 1.3): a proxy, or a port that is not the broker.',
  EDGEGW_E_UPLINK_CLIENT_CERT:
    'The broker refused the client certificate (uplink.cert: unknown CA, expired, revoked, not registered or not active), or hung up after the handshake as IoT Core does when its policy lacks iot:Connect.',
  EDGEGW_E_UPLINK_CONNACK:
    'The broker refused the MQTT connection in its CONNACK; the reason is named (e.g. Not authorized: check the policy).',
  EDGEGW_E_UPLINK_THROTTLED:
    'The broker is throttling the gateway (quota or rate reason codes, or 3.1.1 server unavailable); the uplink backs off, and a refused publish stays queued.',
  EDGEGW_E_UPLINK_DISCONNECTED:
    'The broker ended the session with an MQTT 5 DISCONNECT; its reason is named.',
  EDGEGW_E_UPLINK_DNS: 'The broker host name does not resolve (ENOTFOUND) or DNS did not answer (EAI_AGAIN).',
  EDGEGW_E_UPLINK_REFUSED:
    'Nothing accepts connections at the broker host and port (ECONNREFUSED): check the port and the broker.',
  EDGEGW_E_UPLINK_TIMEOUT:
    'No TLS handshake and CONNACK within the connect timeout: a firewall dropping the port, or a dead link.',
  EDGEGW_E_UPLINK_STALLED:
    'No PUBACK came within uplink.ackTimeout; the uplink reconnected to resend what was unacknowledged.',
  EDGEGW_E_UPLINK_TAKEOVER:
    'Another client uses this gateway id: the broker closed several connections in a row soon after CONNACK, or sent DISCONNECT 0x8E (session taken over).',
  EDGEGW_E_SENSOR_READ: 'A sensor read failed (timeout, exception, CRC); its readings are marked bad.',
  EDGEGW_E_SENSOR_OVERRUN: 'A bus could not keep up with its sensors schedule; polls were skipped.',
  EDGEGW_E_GPIO: 'A GPIO pin cannot be used (not a GPIO board, no permission, or pin in use).',
  EDGEGW_E_SERIAL: 'A serial port cannot be opened (missing adapter, permission, or in use).',
  EDGEGW_E_CLOCK: 'The wall clock is implausible (before the build date); timestamps are marked.',
  EDGEGW_E_WATCHDOG:
    'The pipeline stopped making progress (a commit, a sensor grid or the uplink is overdue, or the event loop was blocked); systemd watchdog pings are withheld, so it restarts the service.',
  EDGEGW_E_RELOAD_RESTART:
    'A reload was refused: a key changed that only a restart can apply; nothing of that reload was applied.',
  EDGEGW_E_DECODE:
    'A payload is not the wire format (bad framing, bad JSON, wrong shape, or a newer version than this consumer reads); the message says where.',
  EDGEGW_E_CONSUMER_IO:
    'The consumer cannot read, write or understand its state file (--state), or cannot write its output (--out); it stops without acknowledging the message it was on. A fresh state file re-emits what the broker redelivers.',
  EDGEGW_E_PROVISION_REJECTED:
    'AWS IoT fleet provisioning rejected a request (its errorCode, statusCode and message are shown: a template that refuses, throttling 429, a bad CSR); nothing was written.',
  EDGEGW_E_PROVISION_TIMEOUT:
    'A fleet provisioning request got no reply within identity.replyTimeout; nothing was written.',
  EDGEGW_E_PROVISION_GATEWAY_ID:
    'edgegw provision wrote the new device identity but could not write the thing name into gateway.id of the site file; set it by hand to the thing name the message gives.',
  EDGEGW_E_IDENTITY_EXISTS:
    'edgegw provision refuses to replace a working device certificate and key without --force.',
  EDGEGW_E_ROTATION:
    'A certificate rotation failed (the reason is named: no reply, throttled, the broker refused the new certificate, no PUBACK); the gateway went back to its previous certificate. Or `edgegw rotate-certificate` stopped waiting while the running daemon was still rotating (it ends on its own: see `edgegw status` and the certificate-rotation audit entry).',
  EDGEGW_E_STATUS_UNAVAILABLE: 'The daemon status socket cannot be reached.',
  EDGEGW_E_USAGE: 'The command line is wrong.',
  EDGEGW_E_UNEXPECTED: 'An internal error (a bug): please report it with the log.',
  EDGEGW_E_FLEET_SHADOW:
    'The Device Shadow (fleet.shadow) rejected a request or could not be reached; the message names the shadow and the reply code.',
  EDGEGW_E_FLEET_OVERLAY:
    'The stored remote overlay (gateway.dataDir/fleet-overlay.json) is unusable (does not open with the queue keys, not private) or no longer validates; the site file alone runs.',
  EDGEGW_E_FLEET_JOB:
    'An IoT Jobs request (fleet.jobs) was rejected or could not be sent; the message names the job and the reply code.',
  EDGEGW_E_FLEET_DEFENDER: 'A Device Defender metrics report (fleet.defender) could not be sent.',
  EDGEGW_E_FLEET_REVERTED:
    'A remote change to uplink.* did not prove the broker reachable within fleet.shadow.revertAfter; the previous configuration runs again.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** sysexits(3) codes used by the CLI (DESIGN.md §5). */
export const Exit = {
  OK: 0,
  FAILURE: 1,
  USAGE: 64,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  CANTCREAT: 73,
  IOERR: 74,
  NOPERM: 77,
  CONFIG: 78,
} as const;

export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** An error with a stable code and the exit status the CLI should use for it. */
export class EdgegwError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;

  constructor(code: ErrorCode, message: string, exitCode: ExitCode = Exit.FAILURE, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EdgegwError';
    this.code = code;
    this.exitCode = exitCode;
  }
}
