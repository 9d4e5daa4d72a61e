// Recognising key material where a path or a name belongs (a PEM block or a base64/hex queue key
// pasted into the config), so no message, warning or check-config output ever repeats it.

/** Said instead of the value, wherever key material turns up in the config. */
export const KEY_MATERIAL_MESSAGE =
  'this looks like key material, not a path; put it in a file with mode 0600 and give the path';

const PEM = /-----BEGIN [A-Z0-9 ]{0,40}-----|PRIVATE KEY/;
// One run of a base64 (standard or URL-safe) or hex alphabet, long enough to hold a 128-bit key.
const BASE64 = /^[A-Za-z0-9+/_-]{32,}={0,2}$/;
const HEX = /^[0-9A-Fa-f]{32,}$/;

/** True for a PEM block anywhere in `text`: no config value may ever hold one. */
export function hasPemBlock(text: string): boolean {
  return PEM.test(text);
}

/**
 * True when `text` looks like key bytes rather than a path or a name: a PEM block, or (whitespace
 * removed) 32+ characters of hex, or of base64 that mixes digits, upper and lower case and has no
 * dot (file names almost always have one; random base64 almost always has all three classes).
 */
export function looksLikeKeyMaterial(text: string): boolean {
  if (hasPemBlock(text)) return true;
  const compact = text.replace(/\s+/g, '');
  if (HEX.test(compact)) return true;
  return BASE64.test(compact) && /[0-9]/.test(compact) && /[a-z]/.test(compact) && /[A-Z]/.test(compact);
}
