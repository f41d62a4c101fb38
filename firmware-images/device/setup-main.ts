/**
 * Entry of canopy-setup.service (bundled by build.sh into /opt/canopy/lib/canopy-setup.mjs).
 * Any failure is printed and the process still exits 0: setup must never stop the boot; the
 * leaf then runs with the config it had (or none: its unit then fails visibly and restarts).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { devicePaths, SERVICE_USER } from './paths.ts';
import { runSetup, type SetupSystem } from './setup.ts';

function serviceIds(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${SERVICE_USER}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  return uid !== undefined && gid !== undefined ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

const system: SetupSystem = {
  run(command, args, input) {
    const result = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000, ...(input !== undefined ? { input } : {}) });
    return { status: result.status ?? 1, stdout: result.stdout ?? '' };
  },
  serviceIds: serviceIds(),
};

try {
  runSetup(devicePaths(), system, (line) => console.log(line));
} catch (err) {
  console.log(`canopy-setup: failed: ${(err as Error).stack ?? String(err)}`);
}
