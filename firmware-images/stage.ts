/**
 * Build time (build.sh): writes the canopy layer's rendered files into the stage directory, and
 * (`--finish <root>`) the steps that need the assembled root filesystem: the service user, the
 * enabled units, cmdline.txt. Runs on the build host: no chroot, nothing executed for arm64.
 *
 *   node --import tsx firmware-images/stage.ts <stage dir> <version>
 *   node --import tsx firmware-images/stage.ts --finish <root dir>
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { devicePaths, SERVICE_USER } from './device/paths.ts';
import {
  adjustCmdline,
  renderCliWrapper,
  renderConfigTemplate,
  renderJournaldConf,
  renderLauncher,
  renderLeafUnit,
  renderSetupUnit,
  renderSshdConf,
  renderSystemdStateMount,
  renderUpdateUnit,
  renderWiredDhcp,
} from './device/render.ts';

const paths = devicePaths();

function write(root: string, path: string, text: string, mode = 0o644): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  chmodSync(file, mode);
}

function link(root: string, path: string, target: string): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  rmSync(file, { force: true });
  symlinkSync(target, file);
}

function stage(root: string, version: string): void {
  write(root, '/opt/canopy/bin/canopy-leaf', renderLauncher(paths), 0o755);
  write(root, '/usr/local/bin/canopy', renderCliWrapper(paths), 0o755);
  link(root, '/usr/local/bin/canopy-update', '/opt/canopy/bin/canopy-update');
  write(root, '/opt/canopy/bin/canopy-update', `#!/bin/sh\nexec /opt/canopy/node/bin/node /opt/canopy/lib/canopy-update.mjs "$@"\n`, 0o755);
  link(root, '/opt/canopy/current', `releases/${version}`);
  write(root, '/etc/systemd/system/canopy-leaf.service', renderLeafUnit(paths));
  write(root, '/etc/systemd/system/canopy-setup.service', renderSetupUnit(paths));
  write(root, '/etc/systemd/system/canopy-update.service', renderUpdateUnit(paths));
  write(root, '/etc/systemd/system/ssh.service.d/canopy.conf', '[Unit]\nAfter=canopy-setup.service\n');
  write(root, '/etc/systemd/journald.conf.d/canopy.conf', renderJournaldConf());
  write(root, '/etc/systemd/system/var-lib-systemd.mount', renderSystemdStateMount());
  write(root, '/etc/systemd/network/20-wired.network', renderWiredDhcp());
  write(root, '/etc/ssh/sshd_config.d/canopy.conf', renderSshdConf(paths));
  link(root, '/etc/wpa_supplicant/wpa_supplicant-wlan0.conf', `${paths.run}/wpa_supplicant-wlan0.conf`);
  write(root, '/etc/hostname', 'canopy-leaf\n');
  write(root, '/boot/firmware/canopy.conf', renderConfigTemplate());
}

function finish(root: string): void {
  if (!readFileSync(join(root, 'etc/passwd'), 'utf8').includes(`\n${SERVICE_USER}:`)) {
    execFileSync('useradd', ['--root', root, '--system', '--user-group', '--home-dir', paths.canopyData, '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER]);
  }
  const systemctl = (...args: string[]): void => void execFileSync('systemctl', ['--root', root, '--quiet', ...args]);
  systemctl('enable', 'var-lib-systemd.mount', 'canopy-setup.service', 'canopy-leaf.service', 'canopy-update.service', 'systemd-networkd.service', 'systemd-resolved.service', 'ssh.service');
  // Nothing waits for the network: a gateway starts offline (FIRMWARE.md); the D-Bus
  // wpa_supplicant fails without D-Bus (setup starts wpa_supplicant@wlan0 when Wi-Fi is set).
  systemctl('mask', 'systemd-networkd-wait-online.service', 'wpa_supplicant.service', 'apt-daily.timer', 'apt-daily-upgrade.timer');
  link(root, '/etc/resolv.conf', '../run/systemd/resolve/stub-resolv.conf');
  mkdirSync(join(root, 'data'), { recursive: true });
  const cmdline = join(root, 'boot/firmware/cmdline.txt');
  if (!existsSync(cmdline)) throw new Error(`${cmdline} is missing: the raspi-firmware hook did not run`);
  writeFileSync(cmdline, adjustCmdline(readFileSync(cmdline, 'utf8')));
}

const [first, second, third] = process.argv.slice(2);
if (first === '--finish' && second !== undefined) finish(second);
else if (first !== undefined && second !== undefined && third === undefined) stage(first, second);
else {
  console.error('usage: stage.ts <stage dir> <version> | stage.ts --finish <root dir>');
  process.exit(2);
}
