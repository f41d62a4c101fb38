/**
 * Text of every file the image and its setup service write: systemd units, the leaf's config,
 * network files, boot files. Pure functions of the settings and paths (unit-tested in
 * test/firmware/render.test.ts); stage.ts (build time) and setup.ts (each boot) write them.
 */
import { DEVICE_CONFIG_KEYS, type ConfigProblem, type DeviceSettings, formatProblem } from './device-config.ts';
import { basename } from 'node:path';
import { devicePaths, NODE_BIN, PARTITION_LABELS, SERVICE_USER, type DevicePaths } from './paths.ts';

/** The leaf's memory ceiling (systemd MemoryMax): a Pi 3 has 1 GB for everything. */
export const LEAF_MEMORY_MAX = '256M';
/** The leaf's open-file limit (connections + LMDB). */
export const LEAF_NOFILE_MAX = 65536;
/** How much RAM the journal may use (logs never go to the card). */
export const JOURNAL_RUNTIME_MAX = '16M';

/**
 * The hub URL of a gateway whose canopy.conf sets none (`canopy leaf` needs one): a reserved
 * name that never resolves (RFC 2606 .invalid), so the leaf serves locally, logs why it cannot
 * dial, and keeps every message for the hub until one is set.
 */
export const HUB_URL_UNSET = 'ws://hub-not-set.invalid:7422';

/** `canopy leaf --config` JSON (leaf/README.md keys; the gateway's paths); problems go in for the log and /leafz. */
export function renderLeafConfig(settings: DeviceSettings, problems: readonly ConfigProblem[]): string {
  const paths = devicePaths();
  const tlsFile = (name: string): string => `${paths.tls}/${basename(name)}`;
  const config: Record<string, unknown> = {
    leaf_name: settings.leafName,
    server_name: settings.leafName,
    jetstream: true,
    store_dir: paths.store,
  };
  config['hub'] = settings.hub.length > 0 ? settings.hub.join(',') : HUB_URL_UNSET;
  if (settings.hubToken !== undefined) config['hub_token'] = settings.hubToken;
  if (settings.hubTlsCa !== undefined || settings.hubTlsCert !== undefined) {
    config['hub_tls'] = {
      ...(settings.hubTlsCa !== undefined ? { ca_file: tlsFile(settings.hubTlsCa) } : {}),
      ...(settings.hubTlsCert !== undefined ? { cert_file: tlsFile(settings.hubTlsCert), key_file: tlsFile(settings.hubTlsKey!) } : {}),
    };
  }
  if (settings.port !== undefined) config['port'] = settings.port;
  config['http_port'] = settings.httpPort ?? 8222;
  if (settings.httpHost !== undefined) config['http_host'] = settings.httpHost;
  if (settings.monitorToken !== undefined) config['monitor_token'] = settings.monitorToken;
  if (problems.length > 0) config['config_problems'] = problems.map(formatProblem);
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** The leaf's unit: restart on failure, resource limits, no privileges, writes only to its store. */
export function renderLeafUnit(paths: DevicePaths): string {
  return `[Unit]
Description=canopy leaf: NATS and JetStream, synced to the hub
After=canopy-setup.service
Wants=canopy-setup.service
RequiresMountsFor=${paths.data}
# Not after network-online.target: a gateway starts and takes data offline (FIRMWARE.md).
StartLimitIntervalSec=0

[Service]
Type=simple
User=${SERVICE_USER}
Group=${SERVICE_USER}
ExecStart=/opt/canopy/bin/canopy-leaf
Restart=on-failure
RestartSec=3
TimeoutStopSec=30
WorkingDirectory=${paths.canopyData}
MemoryMax=${LEAF_MEMORY_MAX}
LimitNOFILE=${LEAF_NOFILE_MAX}
TasksMax=64
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${paths.store}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
# A filtered call fails with EPERM instead of killing Node (libuv probes io_uring, for one).
SystemCallErrorNumber=EPERM
CapabilityBoundingSet=
AmbientCapabilities=
# No MemoryDenyWriteExecute: V8's JIT needs writable+executable pages.

[Install]
WantedBy=multi-user.target
`;
}

/** Each boot, before the network and the leaf: canopy.conf → settings (setup.ts). */
export function renderSetupUnit(paths: DevicePaths): string {
  return `[Unit]
Description=canopy gateway setup from ${paths.bootConfig}
DefaultDependencies=no
# The boot and data partitions are nofail (a damaged one must not stop the boot): order on them.
After=local-fs.target boot-firmware.mount
Wants=local-fs.target network-pre.target
Before=network-pre.target systemd-networkd.service ssh.service canopy-leaf.service sysinit.target
RequiresMountsFor=${paths.data}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${NODE_BIN} /opt/canopy/lib/canopy-setup.mjs
# Problems with canopy.conf go to the serial console too, not only to the journal.
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=600

[Install]
WantedBy=sysinit.target
`;
}

/** After the leaf: finishes an update cut by a power loss, installs a bundle left on the boot partition. */
export function renderUpdateUnit(paths: DevicePaths): string {
  return `[Unit]
Description=canopy release update from ${paths.bootUpdates}
After=canopy-leaf.service
Wants=canopy-leaf.service

[Service]
Type=oneshot
ExecStart=${NODE_BIN} /opt/canopy/lib/canopy-update.mjs --boot
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=900

[Install]
WantedBy=multi-user.target
`;
}

/** Starts the active release: the one an update switched to, else the one the image shipped. */
export function renderLauncher(paths: DevicePaths): string {
  return `#!/bin/sh
# canopy leaf launcher (systemd: canopy-leaf.service). The active release is ${paths.current}
# (switched by canopy-update) if it holds one, else the release the image shipped with.
release=${paths.current}
[ -f "$release/canopy.mjs" ] || release=${paths.factory}
exec ${NODE_BIN} --max-semi-space-size=1 --max-old-space-size=128 "$release/canopy.mjs" leaf --config ${paths.leafConfig} "$@"
`;
}

/** \`canopy\` on the gateway's PATH: the CLI of the active release (canopy status, pub, sub, …). */
export function renderCliWrapper(paths: DevicePaths): string {
  return `#!/bin/sh
release=${paths.current}
[ -f "$release/canopy.mjs" ] || release=${paths.factory}
exec ${NODE_BIN} "$release/canopy.mjs" "$@"
`;
}

/**
 * systemd's own state (timesyncd's clock, logind's lingering users, timer stamps) in RAM: the
 * root is read-only, and services with a StateDirectory= under it fail to start otherwise.
 */
export function renderSystemdStateMount(): string {
  return `[Unit]
Description=systemd state in RAM (the root filesystem is read-only)
DefaultDependencies=no
Conflicts=umount.target
Before=local-fs.target umount.target

[Mount]
What=tmpfs
Where=/var/lib/systemd
Type=tmpfs
Options=mode=0755,nosuid,nodev,size=8M

[Install]
WantedBy=local-fs.target
`;
}

/** Logs live in RAM, bounded: a card that logs wears out. */
export function renderJournaldConf(): string {
  return `[Journal]
Storage=volatile
RuntimeMaxUse=${JOURNAL_RUNTIME_MAX}
RuntimeMaxFileSize=4M
ForwardToSyslog=no
`;
}

/** DHCP on any wired interface unless setup wrote a static address (a lower-numbered file in /run). */
export function renderWiredDhcp(): string {
  return `[Match]
Name=eth* en*

[Network]
DHCP=yes
`;
}

/** /run/systemd/network/10-canopy-static.network for ip_address. */
export function renderStaticNetwork(ip: NonNullable<DeviceSettings['staticIp']>): string {
  return `[Match]
Name=eth* en*

[Network]
Address=${ip.address}
${ip.gateway !== undefined ? `Gateway=${ip.gateway}\n` : ''}${ip.dns.map((d) => `DNS=${d}\n`).join('')}`;
}

/** /run/systemd/network/30-canopy-wlan.network: DHCP on the Wi-Fi interface setup brings up. */
export function renderWlanNetwork(): string {
  return `[Match]
Name=wlan0

[Network]
DHCP=yes
`;
}

/** wpa_supplicant-wlan0.conf (0600, in /run): the quoted SSID and passphrase, escaped. */
export function renderWpaSupplicant(wifi: NonNullable<DeviceSettings['wifi']>): string {
  const quoted = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return `ctrl_interface=DIR=/run/wpa_supplicant GROUP=root
update_config=0
${wifi.country !== undefined ? `country=${wifi.country}\n` : ''}
network={
\tssid=${quoted(wifi.ssid)}
${wifi.psk !== undefined ? (/^[0-9a-fA-F]{64}$/.test(wifi.psk) ? `\tpsk=${wifi.psk}` : `\tpsk=${quoted(wifi.psk)}`) : '\tkey_mgmt=NONE'}
}
`;
}

/** sshd: the host key from the data partition (ed25519, generated at first boot), key logins only. */
export function renderSshdConf(paths: DevicePaths): string {
  return `HostKey ${paths.ssh}/ssh_host_ed25519_key
AuthorizedKeysFile ${paths.ssh}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
`;
}

/**
 * cmdline.txt as the image boots: the root by label and read-only, interface names the docs
 * use (eth0, wlan0), the serial console, fsck repairs after a power cut.
 */
export function adjustCmdline(text: string): string {
  const drop = /^(root|rootfstype|rw|ro|rootwait|net\.ifnames|fsck\.repair)(=|$)/;
  const kept = text.trim().split(/\s+/).filter((w) => w !== '' && !drop.test(w));
  return `${[...kept, `root=LABEL=${PARTITION_LABELS.root}`, 'rootfstype=ext4', 'ro', 'rootwait', 'fsck.repair=yes', 'net.ifnames=0'].join(' ')}\n`;
}

/** The canopy.conf the image ships: every key, commented out, with what it does. */
export function renderConfigTemplate(): string {
  const lines = [
    '# canopy gateway settings. Edit, save, put the card back in and power on.',
    '# One "key = value" per line; "#" starts a comment. A bad line is reported',
    '# (serial console, journal, /leafz config_problems) and the rest still applies.',
    '# Secrets (hub_token, wifi_psk, monitor_token, the TLS key) are moved off this',
    `# card at boot: their value here becomes <imported>. Write a new value to change one.`,
    '',
    'leaf_name = canopy-leaf',
    '# hub = wss://hub.example.com:7422',
    '',
  ];
  for (const [key, spec] of Object.entries(DEVICE_CONFIG_KEYS)) {
    if (key === 'leaf_name' || key === 'hub') continue;
    lines.push(`# ${key}: ${spec.describe}`, `#${key} =`);
  }
  return `${lines.join('\n')}\n`;
}
