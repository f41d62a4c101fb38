/** The files the image and its setup write: units, the leaf's config, network and boot files (firmware-images/device/render.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafOptionsFromArgv } from '../../leaf/cli.ts';
import { parseDeviceConfig, DEVICE_CONFIG_KEYS } from '../../firmware-images/device/device-config.ts';
import { devicePaths } from '../../firmware-images/device/paths.ts';
import {
  adjustCmdline,
  HUB_URL_UNSET,
  LEAF_MEMORY_MAX,
  renderConfigTemplate,
  renderLauncher,
  renderLeafConfig,
  renderLeafUnit,
  renderSetupUnit,
  renderStaticNetwork,
  renderSystemdStateMount,
  renderWpaSupplicant,
} from '../../firmware-images/device/render.ts';

const paths = devicePaths();

/** `key=value` lines of one unit section. */
function section(unit: string, name: string): Map<string, string[]> {
  const body = unit.split(`[${name}]\n`)[1]?.split(/\n\[/)[0] ?? '';
  const out = new Map<string, string[]>();
  for (const line of body.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0 || line.startsWith('#')) continue;
    out.set(line.slice(0, eq), [...(out.get(line.slice(0, eq)) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

test('the leaf unit is hardened: its own user, no privileges, writes only its store, restarts on failure, bounded', () => {
  const service = section(renderLeafUnit(paths), 'Service');
  const one = (key: string): string | undefined => service.get(key)?.[0];
  assert.equal(one('User'), 'canopy');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('ReadWritePaths'), '/data/canopy/jetstream');
  assert.equal(one('CapabilityBoundingSet'), '');
  assert.equal(one('MemoryMax'), LEAF_MEMORY_MAX);
  assert.equal(one('MemoryDenyWriteExecute'), undefined, 'V8 needs W+X pages');
  const unit = section(renderLeafUnit(paths), 'Unit');
  assert.deepEqual(unit.get('RequiresMountsFor'), ['/data']);
  assert.ok(![...(unit.get('After') ?? []), ...(unit.get('Wants') ?? [])].some((v) => v.includes('network-online')), 'a gateway starts offline');
  const setup = section(renderSetupUnit(paths), 'Unit');
  assert.match(setup.get('Before')![0]!, /canopy-leaf\.service/);
  assert.match(setup.get('Before')![0]!, /systemd-networkd\.service/);
  assert.equal(section(renderSetupUnit(paths), 'Service').get('StandardOutput')![0], 'journal+console');
});

test('the rendered leaf config is one canopy leaf accepts, problems included', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-render-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const parsed = parseDeviceConfig('leaf_name = gw-3\nhub = wss://hub:7422\nhub_token = t\nport = 4333\nhttp_host = 0.0.0.0\nmonitor_token = m\nbogus = 1\n');
  const file = join(dir, 'leaf.json');
  writeFileSync(file, renderLeafConfig(parsed.settings, parsed.problems));
  const { options, link, configProblems } = leafOptionsFromArgv({ config: file });
  assert.equal(link.leafName, 'gw-3');
  assert.deepEqual(link.hubUrls, ['wss://hub:7422']);
  assert.equal(link.hubToken, 't');
  assert.equal(options.port, 4333);
  assert.equal(options.httpPort, 8222);
  assert.equal(options.httpHost, '0.0.0.0');
  assert.equal(options.storeDir, '/data/canopy/jetstream');
  assert.deepEqual(configProblems, ['canopy.conf line 7: unknown key "bogus"; ignored (known: ' + Object.keys(DEVICE_CONFIG_KEYS).join(', ') + ')']);
  // TLS files are read when the leaf starts (setup imported them into /data/canopy/tls).
  const tls = parseDeviceConfig('leaf_name = gw-3\nhub = wss://hub:7422\nhub_tls_ca = canopy/ca.pem\nhub_tls_cert = canopy/gw-3.pem\nhub_tls_key = canopy/gw-3-key.pem\n');
  const json = JSON.parse(renderLeafConfig(tls.settings, tls.problems)) as { hub_tls: Record<string, string> };
  assert.deepEqual(json.hub_tls, { ca_file: '/data/canopy/tls/ca.pem', cert_file: '/data/canopy/tls/gw-3.pem', key_file: '/data/canopy/tls/gw-3-key.pem' });

  const none = parseDeviceConfig('leaf_name = gw-4\n');
  writeFileSync(file, renderLeafConfig(none.settings, none.problems));
  assert.deepEqual(leafOptionsFromArgv({ config: file }).link.hubUrls, [HUB_URL_UNSET], 'no hub: a leaf that keeps everything, dialing a name that never resolves');
});

test('network and Wi-Fi files; the passphrase is quoted and escaped', () => {
  assert.equal(renderStaticNetwork({ address: '10.1.2.3/24', gateway: '10.1.2.1', dns: ['1.1.1.1', '9.9.9.9'] }), '[Match]\nName=eth* en*\n\n[Network]\nAddress=10.1.2.3/24\nGateway=10.1.2.1\nDNS=1.1.1.1\nDNS=9.9.9.9\n');
  const wpa = renderWpaSupplicant({ ssid: 'Shop "A"', psk: 'pa\\ss"word', country: 'DE' });
  assert.match(wpa, /^country=DE$/m);
  assert.match(wpa, /^\tssid="Shop \\"A\\""$/m);
  assert.match(wpa, /^\tpsk="pa\\\\ss\\"word"$/m);
  assert.match(renderWpaSupplicant({ ssid: 'open' }), /key_mgmt=NONE/);
  assert.match(renderWpaSupplicant({ ssid: 'x', psk: 'a'.repeat(64) }), /^\tpsk=a{64}$/m, 'a raw 64-hex key is not quoted');
});

test('cmdline.txt: root by label and read-only, whatever raspi-firmware wrote', () => {
  const debian = 'console=tty0 console=ttyS1,115200 root=/dev/mmcblk0p2 rw fsck.repair=yes net.ifnames=0 cma=64M rootwait\n';
  assert.equal(adjustCmdline(debian), 'console=tty0 console=ttyS1,115200 cma=64M root=LABEL=canopy-root rootfstype=ext4 ro rootwait fsck.repair=yes net.ifnames=0\n');
  assert.equal(adjustCmdline(adjustCmdline(debian)), adjustCmdline(debian), 'idempotent');
});

test('the shipped canopy.conf parses cleanly (every key documented) and the launcher prefers an updated release', () => {
  const template = renderConfigTemplate();
  const parsed = parseDeviceConfig(template);
  assert.deepEqual(parsed.problems.map((p) => p.key), ['hub'], 'only "hub is not set"');
  for (const key of Object.keys(DEVICE_CONFIG_KEYS)) assert.match(template, new RegExp(`^#? ?${key} [=:]`, 'm'));
  const launcher = renderLauncher(paths);
  assert.match(launcher, /release=\/data\/canopy\/current\n\[ -f "\$release\/canopy\.mjs" \] \|\| release=\/opt\/canopy\/current/);
  assert.match(launcher, /leaf --config \/data\/canopy\/leaf\.json/);
});

test('systemd\'s state directory is a tmpfs mounted before local-fs.target (services with StateDirectory= on a read-only root)', () => {
  const mount = renderSystemdStateMount();
  assert.equal(section(mount, 'Mount').get('Where')![0], '/var/lib/systemd');
  assert.equal(section(mount, 'Mount').get('Type')![0], 'tmpfs');
  assert.match(section(mount, 'Unit').get('Before')![0]!, /local-fs\.target/);
  assert.equal(section(mount, 'Install').get('WantedBy')![0], 'local-fs.target');
});
