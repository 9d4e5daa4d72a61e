// Bundled in place of `serialport` where modbus-serial requires it (scripts/bundle.mjs).
// modbus-serial loads its serial port classes as it loads, and with them serialport, its parsers
// and its native bindings (several MiB of the daemon's RSS), though only a Modbus RTU bus opens a
// serial port. This stands in for serialport's exports that modbus-serial uses (`new SerialPort`,
// `SerialPort.list`) and loads the real package (external, from node_modules) on first use.
'use strict';

let real = null;
function load() {
  if (real === null) real = require('serialport');
  return real;
}

class SerialPort {
  constructor(...args) {
    // A constructor that returns an object yields it: the caller gets the real port.
    return new (load().SerialPort)(...args);
  }

  static list() {
    return load().SerialPort.list();
  }
}

module.exports = { SerialPort };
