// Board profiles (hw-profiles/<name>.yaml): pin names to sysfs GPIO numbers, serial aliases to
// device paths. Filled in by the config stage; this file fixes the shape.

export interface BoardProfile {
  readonly name: string;
  readonly description: string;
  /** Pin name (e.g. GPIO17) to sysfs GPIO number, chip base already added. */
  readonly gpio: Readonly<Record<string, number>>;
  /** Serial alias (e.g. serial0) to device path. */
  readonly serial: Readonly<Record<string, string>>;
}
