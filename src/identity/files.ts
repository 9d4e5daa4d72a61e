// The device identity on disk: uplink.cert and uplink.key, with `<file>.next` (a new identity not
// yet committed) and `<file>.previous` (the one a commit replaced, kept until the next successful
// start). A commit hard-links the current files to `.previous`, then renames `.next` over the key,
// then over the certificate, syncing the folders: at every instant the current names hold a file,
// and recoverIdentity() settles whatever a crash left between two of those steps.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { link, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncFolder } from '../durable-file.js';
import { removeIfThere, writeOwned } from './owned-file.js';

export interface IdentityPaths {
  cert: string;
  key: string;
}

export const next = (file: string): string => `${file}.next`;
export const previous = (file: string): string => `${file}.previous`;

/** Whether `key` is the private key of `cert` (false when either is missing or does not parse). */
export async function pairMatches(cert: string, key: string): Promise<boolean> {
  try {
    const [c, k] = await Promise.all([readFile(cert), readFile(key)]);
    return new X509Certificate(c).checkPrivateKey(createPrivateKey(k));
  } catch {
    return false;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await (await open(file, 'r')).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes `<cert>.next` (0644) and `<key>.next` (0600), synced; an older `.next` is replaced. As
 * root (`sudo edgegw provision`), each takes the owner of the file it will replace, or of its
 * folder (owned-file.ts), so the daemon's user can read what root wrote.
 */
export async function writeNext(paths: IdentityPaths, certPem: string, keyPem: string): Promise<void> {
  await writeOwned(next(paths.key), keyPem, 0o600, paths.key);
  await writeOwned(next(paths.cert), certPem, 0o644, paths.cert);
  await syncFolders(paths);
}

/** Removes `.next` files (a rotation that failed, or one a crash interrupted before its commit). */
export async function discardNext(paths: IdentityPaths): Promise<void> {
  await removeIfThere(next(paths.cert));
  await removeIfThere(next(paths.key));
}

export async function removePrevious(paths: IdentityPaths): Promise<void> {
  await removeIfThere(previous(paths.cert));
  await removeIfThere(previous(paths.key));
}

/** Makes `.next` the identity; the replaced files (if any) stay as `.previous`. */
export async function commitNext(paths: IdentityPaths): Promise<void> {
  for (const file of [paths.key, paths.cert]) {
    await removeIfThere(previous(file));
    if (await exists(file)) await link(file, previous(file));
  }
  await syncFolders(paths);
  // Key first: a crash between the two renames leaves the new key beside `.next`'s certificate.
  await rename(next(paths.key), paths.key);
  await rename(next(paths.cert), paths.cert);
  await syncFolders(paths);
}

export type Recovery = 'none' | 'discarded-next' | 'completed-commit' | 'restored-previous';

/**
 * At start, before the files are read: an identity whose files match is kept (a `.next` beside it
 * was never proven, or its commit never began: removed). A commit cut between its two renames is
 * finished (the new key is in place and `.next`'s certificate belongs to it; the proof had passed).
 * Anything else that does not match falls back to `.previous` when that pair matches.
 */
export async function recoverIdentity(paths: IdentityPaths): Promise<Recovery> {
  const pending = (await exists(next(paths.cert))) || (await exists(next(paths.key)));
  if (await pairMatches(paths.cert, paths.key)) {
    if (!pending) return 'none';
    await discardNext(paths);
    return 'discarded-next';
  }
  if (await pairMatches(next(paths.cert), paths.key)) {
    await rename(next(paths.cert), paths.cert);
    await removeIfThere(next(paths.key));
    await syncFolders(paths);
    return 'completed-commit';
  }
  if (await pairMatches(previous(paths.cert), previous(paths.key))) {
    await rename(previous(paths.key), paths.key);
    await rename(previous(paths.cert), paths.cert);
    await discardNext(paths);
    await syncFolders(paths);
    return 'restored-previous';
  }
  return 'none';
}

async function syncFolders(paths: IdentityPaths): Promise<void> {
  for (const dir of new Set([dirname(paths.cert), dirname(paths.key)])) await syncFolder(dir);
}
