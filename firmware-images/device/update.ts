/**
 * Updates without reflashing: a release bundle (`canopy-leaf-<version>-arm64-release.tar.gz`
 * with its `.sha256`, made by build.sh) is checked, unpacked side by side under
 * /data/canopy/releases/<version>, and switched to atomically (a new symlink renamed over
 * /data/canopy/current). The leaf is restarted on it; if it does not pass its health check in
 * time, the previous release is switched back and restarted (rollback).
 *
 * The progress is in update.json, written before each switch: a power cut while the new release
 * is on trial leaves `trying`, and the next boot (`resumeUpdate`) finishes the check or rolls
 * back. The factory release (on the read-only root) is the last resort: with no `current` link
 * the launcher starts it.
 *
 * The leaf's restart and health check are `UpdateDeps` (systemd and /healthz on the gateway,
 * update-main.ts; real processes in test/firmware/update.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { DevicePaths } from './paths.ts';
import { writeAtomic } from './setup.ts';

/** The largest release bundle accepted (the image's own is about 15 MB). */
export const UPDATE_BUNDLE_BYTES_MAX = 256 * 1024 * 1024;
/** How long a new release has to pass its health check after its start (slow SD cards, cold JIT). */
export const UPDATE_HEALTH_TIMEOUT_MS_DEFAULT = 180_000;
/** What a release bundle's file name looks like (the version is read from its package.json). */
export const RELEASE_BUNDLE_PATTERN = /^canopy-leaf-.+-arm64-release\.tar\.gz$/;

export type UpdateState = {
  readonly state: 'trying' | 'committed' | 'rolled-back';
  readonly version: string;
  /** The release directory switched away from; undefined: the factory release. */
  readonly previous?: string;
  readonly since: string;
  readonly reason?: string;
};

export type UpdateDeps = {
  restartLeaf(): Promise<void>;
  /** Whether the leaf (on the release `current` points at) is healthy; waits up to its own timeout. */
  healthCheck(): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>;
  print(line: string): void;
};

/** A bundle that cannot be installed: the message says why; nothing was switched. */
export class UpdateError extends Error {
  override readonly name = 'UpdateError';
  readonly code = 'ERR_UPDATE';
}

export type UpdateResult = { readonly outcome: 'committed' | 'rolled-back'; readonly version: string; readonly reason?: string };

/** The release directory `current` points at, or undefined for the factory release. */
export function activeRelease(paths: DevicePaths): string | undefined {
  try {
    const target = readlinkSync(paths.current);
    return target.startsWith('/') ? target : join(paths.canopyData, target);
  } catch {
    return undefined;
  }
}

export function readUpdateState(paths: DevicePaths): UpdateState | undefined {
  try {
    return JSON.parse(readFileSync(paths.updateState, 'utf8')) as UpdateState;
  } catch {
    return undefined;
  }
}

/** Checks the bundle against its .sha256 and unpacks it to releases/<version>; nothing is switched. */
export async function installBundle(bundle: string, paths: DevicePaths): Promise<{ version: string; dir: string }> {
  const size = statSync(bundle, { throwIfNoEntry: false })?.size;
  if (size === undefined) throw new UpdateError(`${bundle} does not exist`);
  if (size > UPDATE_BUNDLE_BYTES_MAX) throw new UpdateError(`${basename(bundle)} is ${size} bytes, more than UPDATE_BUNDLE_BYTES_MAX (${UPDATE_BUNDLE_BYTES_MAX})`);
  const sumFile = `${bundle}.sha256`;
  if (!existsSync(sumFile)) throw new UpdateError(`${basename(sumFile)} is missing: a bundle is installed only with its checksum`);
  const expected = /^([0-9a-f]{64})\b/i.exec(readFileSync(sumFile, 'utf8').trim())?.[1]?.toLowerCase();
  if (expected === undefined) throw new UpdateError(`${basename(sumFile)} does not hold a SHA-256 sum`);
  const actual = await sha256File(bundle);
  if (actual !== expected) throw new UpdateError(`${basename(bundle)} does not match its checksum (sha256 ${actual}, expected ${expected})`);

  mkdirSync(paths.releases, { recursive: true });
  const incoming = join(paths.releases, `.incoming-${process.pid}`);
  rmSync(incoming, { recursive: true, force: true });
  mkdirSync(incoming);
  try {
    const untar = spawnSync('tar', ['-xzf', bundle, '-C', incoming, '--no-same-owner'], { encoding: 'utf8' });
    if (untar.status !== 0) throw new UpdateError(`${basename(bundle)} is not a readable tar.gz: ${untar.stderr.trim()}`);
    const top = readdirSync(incoming);
    if (top.length !== 1) throw new UpdateError(`${basename(bundle)} must hold one release directory, not ${top.length} entries`);
    const unpacked = join(incoming, top[0]!);
    const version = releaseVersion(unpacked);
    if (!existsSync(join(unpacked, 'canopy.mjs'))) throw new UpdateError(`${basename(bundle)} has no canopy.mjs`);
    const dir = join(paths.releases, version);
    if (dir === activeRelease(paths)) throw new UpdateError(`release ${version} is already the active one`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(unpacked, dir);
    return { version, dir };
  } finally {
    rmSync(incoming, { recursive: true, force: true });
  }
}

function releaseVersion(dir: string): string {
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
  } catch {
    throw new UpdateError('the release has no readable package.json');
  }
  if (typeof version !== 'string' || !/^[0-9A-Za-z.+-]{1,64}$/.test(version)) throw new UpdateError(`the release's version ${JSON.stringify(version)} is not a version`);
  return version;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Points `current` at `dir` (undefined: removes it, so the factory release runs) in one rename. */
export function switchRelease(paths: DevicePaths, dir: string | undefined): void {
  if (dir === undefined) {
    rmSync(paths.current, { force: true });
    return;
  }
  const next = `${paths.current}.next`;
  rmSync(next, { force: true });
  symlinkSync(dir, next);
  renameSync(next, paths.current);
}

function writeState(paths: DevicePaths, state: UpdateState): void {
  writeAtomic(paths.updateState, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

/** Installs `bundle`, switches to it, restarts the leaf, and keeps it or rolls back. */
export async function applyUpdate(bundle: string, paths: DevicePaths, deps: UpdateDeps): Promise<UpdateResult> {
  const { version, dir } = await installBundle(bundle, paths);
  const previous = activeRelease(paths);
  writeState(paths, { state: 'trying', version, ...(previous !== undefined ? { previous } : {}), since: new Date().toISOString() });
  switchRelease(paths, dir);
  deps.print(`canopy-update: switched to ${version}; restarting the leaf and checking its health`);
  await deps.restartLeaf();
  return settle(paths, deps);
}

/** After a power cut during a trial (update.json says `trying`): finish the check. */
export async function resumeUpdate(paths: DevicePaths, deps: UpdateDeps): Promise<UpdateResult | undefined> {
  const state = readUpdateState(paths);
  if (state?.state !== 'trying') return undefined;
  deps.print(`canopy-update: the check of ${state.version} was cut short (power loss?); checking again`);
  return settle(paths, deps);
}

async function settle(paths: DevicePaths, deps: UpdateDeps): Promise<UpdateResult> {
  const state = readUpdateState(paths)!;
  const health = await deps.healthCheck();
  if (health.ok) {
    writeState(paths, { ...state, state: 'committed', since: new Date().toISOString() });
    pruneReleases(paths, state.previous);
    deps.print(`canopy-update: ${state.version} is healthy and stays`);
    return { outcome: 'committed', version: state.version };
  }
  switchRelease(paths, state.previous !== undefined && existsSync(state.previous) ? state.previous : undefined);
  writeState(paths, { ...state, state: 'rolled-back', since: new Date().toISOString(), reason: health.reason });
  deps.print(`canopy-update: ${state.version} failed its health check (${health.reason}); rolled back to ${state.previous !== undefined ? basename(state.previous) : 'the factory release'}`);
  await deps.restartLeaf();
  return { outcome: 'rolled-back', version: state.version, reason: health.reason };
}

/** Keeps the active release and the one before it (the next rollback target); removes the rest. */
function pruneReleases(paths: DevicePaths, previous: string | undefined): void {
  const keep = new Set([activeRelease(paths), previous].filter((d) => d !== undefined).map((d) => basename(d)));
  for (const name of readdirSync(paths.releases)) {
    if (!keep.has(name)) rmSync(join(paths.releases, name), { recursive: true, force: true });
  }
}

/**
 * At boot: finish an interrupted trial, then install the newest bundle on the boot partition.
 * The bundle is deleted once it stays; one that failed is renamed `.failed` (not retried).
 */
export async function bootUpdate(paths: DevicePaths, deps: UpdateDeps): Promise<UpdateResult | undefined> {
  await resumeUpdate(paths, deps);
  if (!existsSync(paths.bootUpdates)) return undefined;
  const bundles = readdirSync(paths.bootUpdates).filter((n) => RELEASE_BUNDLE_PATTERN.test(n)).sort();
  const newest = bundles.at(-1);
  if (newest === undefined) return undefined;
  const bundle = join(paths.bootUpdates, newest);
  let result: UpdateResult;
  try {
    result = await applyUpdate(bundle, paths, deps);
  } catch (err) {
    if (!(err instanceof UpdateError)) throw err;
    deps.print(`canopy-update: ${newest} not installed: ${err.message}`);
    renameSync(bundle, `${bundle}.failed`);
    return undefined;
  }
  if (result.outcome === 'committed') {
    for (const name of bundles) for (const file of [name, `${name}.sha256`]) rmSync(join(paths.bootUpdates, file), { force: true });
  } else {
    renameSync(bundle, `${bundle}.failed`);
  }
  return result;
}
