/**
 * canopy-setup.service, at every boot before the network and the leaf: grows the data partition
 * to fill the card, reads canopy.conf from the boot partition against what was imported before
 * (device-config.ts), imports secrets and TLS files onto the data partition and scrubs them from
 * the boot partition, renders the leaf's config, sets the host name, writes the network files
 * under /run, and makes the SSH host keys once.
 *
 * Never fails the boot on a bad setting: every problem is printed (the unit sends stdout to the
 * journal and the serial console) and handed to the leaf (`config_problems`: logged at start,
 * shown on /leafz), and the gateway runs with what is valid. Commands go through `SetupSystem`
 * so that tests run the whole setup in a temp directory.
 */
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { formatProblem, parseDeviceConfig, scrubSecrets, type ConfigProblem, type DeviceSettings } from './device-config.ts';
import type { DevicePaths } from './paths.ts';
import { renderLeafConfig, renderStaticNetwork, renderWlanNetwork, renderWpaSupplicant } from './render.ts';

/** What setup runs on the gateway (a recording stand-in in tests). */
export type SetupSystem = {
  /** Runs a command (with `input` on its stdin); its exit status (never throws for a non-zero one). */
  run(command: string, args: readonly string[], input?: string): { status: number; stdout: string };
  /** The service user's ids, for the files the leaf reads or writes. */
  readonly serviceIds: { readonly uid: number; readonly gid: number } | undefined;
};

export type SetupReport = { readonly settings: DeviceSettings; readonly problems: readonly ConfigProblem[] };

/** TLS keys of canopy.conf: file names on the boot partition, imported into paths.tls. */
const TLS_KEYS = ['hub_tls_ca', 'hub_tls_cert', 'hub_tls_key'] as const;

export function runSetup(paths: DevicePaths, system: SetupSystem, print: (line: string) => void): SetupReport {
  growDataPartition(paths, system, print);
  mkdirSync(paths.canopyData, { recursive: true, mode: 0o755 });
  const ids = system.serviceIds;
  ensureDir(paths.store, 0o750, ids);
  ensureDir(paths.tls, 0o750, ids && { uid: 0, gid: ids.gid });

  const previous = readJson(paths.state) ?? {};
  const text = existsSync(paths.bootConfig) ? readFileSync(paths.bootConfig, 'utf8') : undefined;
  const parsed = parseDeviceConfig(text, previous);
  const problems = [...parsed.problems];
  const accepted = { ...parsed.accepted };
  const imported = [...parsed.importedSecrets];

  // TLS files: copied at each boot while on the boot partition; the key is then deleted from it.
  for (const key of TLS_KEYS) {
    const name = accepted[key];
    if (name === undefined) continue;
    const from = join(paths.boot, name);
    const to = join(paths.tls, basename(name));
    if (existsSync(from)) {
      copyFileSync(from, `${to}.tmp`);
      chmodSync(`${to}.tmp`, 0o640);
      if (ids !== undefined) chownSync(`${to}.tmp`, 0, ids.gid);
      renameSync(`${to}.tmp`, to);
    } else if (!existsSync(to)) {
      problems.push({ key, message: `${key}: ${name} is not on the boot partition; ${key} is left unset` });
      delete accepted[key];
    }
  }
  // A TLS setting lost to a missing file takes its partner with it (cert without key, …).
  const reparsed = parseDeviceConfig(serialize(accepted), {});
  const settings = reparsed.settings;
  for (const p of reparsed.problems) if (!problems.some((q) => q.message === p.message) && p.key !== 'leaf_name') problems.push(p);

  writeAtomic(paths.state, `${JSON.stringify(accepted, null, 2)}\n`, 0o600);
  writeAtomic(paths.leafConfig, renderLeafConfig(settings, problems), 0o640, ids && { uid: 0, gid: ids.gid });

  // Only now, with the secrets safe on the data partition, scrub them from the boot partition.
  if (text !== undefined) {
    const scrubbed = scrubSecrets(text, imported);
    if (scrubbed !== undefined) writeAtomic(paths.bootConfig, scrubbed, 0o600);
  }
  if (accepted['hub_tls_key'] !== undefined) rmSync(join(paths.boot, accepted['hub_tls_key']), { force: true });
  // FAT has no journal and fsync of a file and its directory was not enough: after a power cut
  // 20 s later the scrubbed canopy.conf was empty (firmware:test). syncfs writes out the FAT too.
  if (imported.length > 0 || accepted['hub_tls_key'] !== undefined) system.run('sync', ['-f', paths.boot]);

  writeHostName(paths, settings.hostname, print);
  writeNetwork(paths, settings, system, print);
  writeSsh(paths, settings, system, print);

  for (const problem of problems) print(`canopy-setup: ${formatProblem(problem)}`);
  print(`canopy-setup: leaf ${settings.leafName}, host ${settings.hostname}, hub ${settings.hub.join(',') || '(none)'}, ${problems.length} problem(s) in canopy.conf`);
  return { settings, problems };
}

/** Back to canopy.conf lines (the second pass runs the checks that span keys on what is left). */
function serialize(values: Readonly<Record<string, string>>): string {
  return Object.entries(values).map(([k, v]) => `${k} = ${v}`).join('\n');
}

function ensureDir(path: string, mode: number, owner: { uid: number; gid: number } | undefined): void {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
  if (owner !== undefined) chownSync(path, owner.uid, owner.gid);
}

function readJson(path: string): Record<string, string> | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, string>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Write, fsync, rename, fsync the directory: a power cut leaves the old file or the new one,
 * never an empty or half-written one. Without the fsyncs a FAT boot partition cut 20 s after
 * the scrub came back with an empty canopy.conf (firmware:test, before this fix).
 */
export function writeAtomic(path: string, text: string, mode: number, owner?: { uid: number; gid: number }): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  if (owner !== undefined) chownSync(tmp, owner.uid, owner.gid);
  renameSync(tmp, path);
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // a file system without directory fsync: the rename is as durable as it can be
  }
}

/** Free space after the data partition below which it is not grown (alignment leftovers). */
export const DATA_GROW_MIN_SECTORS = 2048 * 16;

/**
 * Grows the data partition (the last one) to the end of the card, then its ext4, while mounted
 * (growing it before it is mounted made systemd drop the leaf's start jobs: FIRMWARE.md).
 * Sizes from sysfs; `sfdisk -N` rewrites the entry, `partx -u` tells the kernel (the disk is in
 * use, it cannot re-read the table), `resize2fs` grows ext4 online. A no-op once it fills the card.
 */
function growDataPartition(paths: DevicePaths, system: SetupSystem, print: (line: string) => void): void {
  const source = system.run('findmnt', ['-n', '-o', 'SOURCE', paths.data]).stdout.trim();
  const match = /^\/dev\/((mmcblk\d+|nvme\d+n\d+)p|([a-z]+))(\d+)$/.exec(source);
  if (match === null) return;
  const disk = match[2] ?? match[3]!;
  const number = match[4]!;
  const sectors = (file: string): number => Number(readFileSync(join(paths.sysBlock, file), 'utf8').trim());
  let free: number;
  try {
    const partition = basename(source);
    free = sectors(`${disk}/size`) - sectors(`${disk}/${partition}/start`) - sectors(`${disk}/${partition}/size`);
  } catch {
    return;
  }
  if (!(free >= DATA_GROW_MIN_SECTORS)) return;
  const steps: [string, string[], string?][] = [
    ['sfdisk', ['--no-reread', '--no-tell-kernel', '-q', '-N', number, `/dev/${disk}`], ', +'],
    ['partx', ['-u', '-n', number, `/dev/${disk}`]],
    ['resize2fs', [source]],
  ];
  for (const [command, args, input] of steps) {
    if (system.run(command, args, input).status !== 0) {
      print(`canopy-setup: growing the data partition failed at ${command}; retried at the next boot`);
      return;
    }
  }
  print(`canopy-setup: data partition ${source} grown to fill the card (+${Math.round(free / 2048)} MiB)`);
}

function writeHostName(paths: DevicePaths, name: string, print: (line: string) => void): void {
  try {
    writeFileSync(paths.hostname, name);
  } catch (err) {
    print(`canopy-setup: cannot set the host name: ${(err as Error).message}`);
  }
}

function writeNetwork(paths: DevicePaths, settings: DeviceSettings, system: SetupSystem, print: (line: string) => void): void {
  const staticFile = join(paths.networkRun, '10-canopy-static.network');
  const wlanFile = join(paths.networkRun, '30-canopy-wlan.network');
  const wpaFile = join(paths.run, 'wpa_supplicant-wlan0.conf');
  if (settings.staticIp !== undefined) writeAtomic(staticFile, renderStaticNetwork(settings.staticIp), 0o644);
  else rmSync(staticFile, { force: true });
  if (settings.wifi === undefined) {
    rmSync(wlanFile, { force: true });
    rmSync(wpaFile, { force: true });
    return;
  }
  writeAtomic(wpaFile, renderWpaSupplicant(settings.wifi), 0o600);
  writeAtomic(wlanFile, renderWlanNetwork(), 0o644);
  system.run('sh', ['-c', 'for r in /sys/class/rfkill/rfkill*; do [ "$(cat $r/type)" = wlan ] && echo 0 > $r/soft; done; true']);
  if (system.run('systemctl', ['start', '--no-block', 'wpa_supplicant@wlan0.service']).status !== 0) print('canopy-setup: could not start wpa_supplicant@wlan0');
}

function writeSsh(paths: DevicePaths, settings: DeviceSettings, system: SetupSystem, print: (line: string) => void): void {
  mkdirSync(paths.ssh, { recursive: true, mode: 0o700 });
  const key = join(paths.ssh, 'ssh_host_ed25519_key');
  if (!existsSync(key)) {
    const made = system.run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${settings.hostname}`, '-f', key]);
    print(made.status === 0 ? 'canopy-setup: SSH host key generated' : 'canopy-setup: ssh-keygen failed; SSH stays off');
  }
  const authorized = join(paths.ssh, 'authorized_keys');
  if (settings.sshAuthorizedKey !== undefined) writeAtomic(authorized, `${settings.sshAuthorizedKey}\n`, 0o600);
  else rmSync(authorized, { force: true });
}
