/**
 * canopy-setup (firmware-images/device/setup.ts), the whole boot-time setup in a temp directory
 * laid out as the gateway's: boot partition, data partition, /run, /proc/sys/kernel/hostname.
 * The commands it runs (findmnt, sfdisk, partx, resize2fs, ssh-keygen, systemctl) go to a
 * recording stand-in that answers as on a Pi (sfdisk grows the partition in the fake sysfs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devicePaths, type DevicePaths } from '../../firmware-images/device/paths.ts';
import { runSetup, type SetupSystem } from '../../firmware-images/device/setup.ts';

type Gateway = { paths: DevicePaths; system: SetupSystem; commands: string[]; lines: string[] };

/** A 4 GiB card whose data partition (p3) holds 64 MiB. */
const CARD_SECTORS = 8 * 1024 * 1024;
const P3_START = 1_200_000;

function gateway(t: { after(fn: () => void): void }): Gateway {
  const root = mkdtempSync(join(tmpdir(), 'canopy-setup-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const paths = devicePaths(root);
  for (const dir of [paths.boot, paths.data, join(root, 'proc/sys/kernel'), join(paths.sysBlock, 'mmcblk0/mmcblk0p3')]) mkdirSync(dir, { recursive: true });
  writeFileSync(join(paths.sysBlock, 'mmcblk0/size'), `${CARD_SECTORS}\n`);
  writeFileSync(join(paths.sysBlock, 'mmcblk0/mmcblk0p3/start'), `${P3_START}\n`);
  writeFileSync(join(paths.sysBlock, 'mmcblk0/mmcblk0p3/size'), `${64 * 2048}\n`);
  const commands: string[] = [];
  const system: SetupSystem = {
    run(command, args, input) {
      commands.push([command, ...args, ...(input !== undefined ? [`<<< ${input}`] : [])].join(' '));
      if (command === 'findmnt') return { status: 0, stdout: '/dev/mmcblk0p3\n' };
      if (command === 'sfdisk') writeFileSync(join(paths.sysBlock, 'mmcblk0/mmcblk0p3/size'), `${CARD_SECTORS - P3_START}\n`);
      if (command === 'ssh-keygen') writeFileSync(args.at(-1)!, 'KEY');
      return { status: 0, stdout: '' };
    },
    serviceIds: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
  };
  return { paths, system, commands, lines: [] };
}

const boot = (g: Gateway, text: string): void => writeFileSync(g.paths.bootConfig, text);
const setup = (g: Gateway): ReturnType<typeof runSetup> => runSetup(g.paths, g.system, (line) => g.lines.push(line));
const leafJson = (g: Gateway): Record<string, unknown> => JSON.parse(readFileSync(g.paths.leafConfig, 'utf8')) as Record<string, unknown>;
const mode = (path: string): number => statSync(path).mode & 0o777;

const CONF = `leaf_name = gw-01
hub = wss://hub.example.com:7422
hub_token = s3cret-token
hub_tls_ca = canopy/ca.pem
hub_tls_cert = canopy/gw-01.pem
hub_tls_key = canopy/gw-01-key.pem
wifi_ssid = Shop Floor
wifi_psk = correct horse battery
ip_address = 192.168.1.50/24
gateway = 192.168.1.1
ssh_authorized_key = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4x field@laptop
http_port = 99999
`;

function withTlsFiles(g: Gateway): void {
  mkdirSync(join(g.paths.boot, 'canopy'), { recursive: true });
  for (const name of ['ca.pem', 'gw-01.pem', 'gw-01-key.pem']) writeFileSync(join(g.paths.boot, 'canopy', name), `PEM ${name}`);
}

test('first boot: grows the data partition, imports secrets and TLS files, scrubs them from the boot partition, renders everything', (t) => {
  const g = gateway(t);
  boot(g, CONF);
  withTlsFiles(g);
  const report = setup(g);

  assert.deepEqual(g.commands.slice(0, 4), [
    `findmnt -n -o SOURCE ${g.paths.data}`,
    'sfdisk --no-reread --no-tell-kernel -q -N 3 /dev/mmcblk0 <<< , +',
    'partx -u -n 3 /dev/mmcblk0',
    'resize2fs /dev/mmcblk0p3',
  ]);
  assert.ok(g.lines.some((l) => /data partition \/dev\/mmcblk0p3 grown to fill the card \(\+\d+ MiB\)/.test(l)), g.lines.join('\n'));
  const leaf = leafJson(g);
  assert.equal(leaf['leaf_name'], 'gw-01');
  assert.equal(leaf['hub_token'], 's3cret-token');
  assert.deepEqual(leaf['hub_tls'], { ca_file: '/data/canopy/tls/ca.pem', cert_file: '/data/canopy/tls/gw-01.pem', key_file: '/data/canopy/tls/gw-01-key.pem' });
  assert.equal(leaf['http_port'], 8222, 'the bad http_port falls back to the default');
  assert.deepEqual(leaf['config_problems'], ['canopy.conf line 12: http_port must be a port number, 1 to 65535 (0 = off), not "99999"; http_port is left unset']);
  assert.equal(mode(g.paths.leafConfig), 0o640);
  assert.equal(report.problems.length, 1);

  const scrubbed = readFileSync(g.paths.bootConfig, 'utf8');
  assert.ok(!scrubbed.includes('s3cret-token') && !scrubbed.includes('correct horse'), scrubbed);
  assert.match(scrubbed, /^hub_token = <imported>$/m);
  assert.ok(!existsSync(join(g.paths.boot, 'canopy/gw-01-key.pem')), 'the TLS key is deleted from the boot partition');
  assert.ok(existsSync(join(g.paths.boot, 'canopy/ca.pem')), 'certificates stay');
  assert.ok(g.commands.includes(`sync -f ${g.paths.boot}`), 'the boot partition is synced after the scrub');
  assert.equal(readFileSync(join(g.paths.tls, 'gw-01-key.pem'), 'utf8'), 'PEM gw-01-key.pem');
  assert.equal(mode(join(g.paths.tls, 'gw-01-key.pem')), 0o640);
  assert.equal(mode(g.paths.state), 0o600);

  assert.equal(readFileSync(g.paths.hostname, 'utf8'), 'gw-01');
  assert.match(readFileSync(join(g.paths.networkRun, '10-canopy-static.network'), 'utf8'), /Address=192\.168\.1\.50\/24\nGateway=192\.168\.1\.1/);
  assert.match(readFileSync(join(g.paths.run, 'wpa_supplicant-wlan0.conf'), 'utf8'), /ssid="Shop Floor"/);
  assert.equal(mode(join(g.paths.run, 'wpa_supplicant-wlan0.conf')), 0o600);
  assert.ok(g.commands.includes('systemctl start --no-block wpa_supplicant@wlan0.service'));
  assert.ok(g.commands.some((c) => c.startsWith('ssh-keygen -q -t ed25519')));
  assert.match(readFileSync(join(g.paths.ssh, 'authorized_keys'), 'utf8'), /^ssh-ed25519 AAAA/);
  assert.ok(g.lines.includes('canopy-setup: canopy.conf line 12: http_port must be a port number, 1 to 65535 (0 = off), not "99999"; http_port is left unset'), g.lines.join('\n'));
});

test('the next boots keep the imported secrets, make no new host key, grow nothing, and follow edits', (t) => {
  const g = gateway(t);
  boot(g, CONF);
  withTlsFiles(g);
  setup(g);
  g.commands.length = 0;

  setup(g);
  assert.equal(leafJson(g)['hub_token'], 's3cret-token');
  assert.deepEqual((leafJson(g)['hub_tls'] as Record<string, string>)['key_file'], '/data/canopy/tls/gw-01-key.pem', 'the key stays imported');
  assert.ok(!g.commands.some((c) => c.startsWith('ssh-keygen')), 'the host key is made once');
  assert.ok(!g.commands.some((c) => /^(sfdisk|partx|resize2fs)/.test(c)), 'the partition fills the card: nothing to grow');

  // The engineer removes Wi-Fi and the static address, fixes http_port, sets a new token.
  boot(g, readFileSync(g.paths.bootConfig, 'utf8').replace(/^(wifi_|ip_address|gateway).*\n/gm, '').replace('http_port = 99999', 'http_port = 8080').replace('hub_token = <imported>', 'hub_token = rotated'));
  setup(g);
  const leaf = leafJson(g);
  assert.equal(leaf['hub_token'], 'rotated');
  assert.equal(leaf['http_port'], 8080);
  assert.equal(leaf['config_problems'], undefined);
  assert.ok(!existsSync(join(g.paths.networkRun, '10-canopy-static.network')));
  assert.ok(!existsSync(join(g.paths.run, 'wpa_supplicant-wlan0.conf')));
  assert.match(readFileSync(g.paths.bootConfig, 'utf8'), /^hub_token = <imported>$/m);
});

test('a lost canopy.conf, a damaged state file, or a TLS file that is not there: reported, and the leaf still gets a config', (t) => {
  const g = gateway(t);
  boot(g, 'leaf_name = gw-02\nhub = wss://hub:7422\nhub_token = tok\nhub_tls_cert = canopy/missing.pem\nhub_tls_key = canopy/missing-key.pem\n');
  setup(g);
  let leaf = leafJson(g);
  assert.equal(leaf['hub_tls'], undefined, 'no half a TLS setting');
  assert.ok((leaf['config_problems'] as string[]).some((p) => p.includes('hub_tls_cert: canopy/missing.pem is not on the boot partition')), JSON.stringify(leaf));

  rmSync(g.paths.bootConfig);
  setup(g);
  leaf = leafJson(g);
  assert.equal(leaf['leaf_name'], 'gw-02');
  assert.equal(leaf['hub_token'], 'tok');
  assert.match((leaf['config_problems'] as string[])[0]!, /canopy\.conf is missing from the boot partition; running with the settings imported before/);

  writeFileSync(g.paths.state, '{ not json');
  setup(g);
  leaf = leafJson(g);
  assert.equal(leaf['leaf_name'], 'canopy-leaf');
  assert.equal(leaf['hub'], 'ws://hub-not-set.invalid:7422');
});

test('a failed growth step is reported, stops the growth (no resize2fs on a partition that did not grow), and is retried at the next boot', (t) => {
  const g = gateway(t);
  boot(g, 'leaf_name = gw-05\nhub = ws://hub:7422\n');
  const run = g.system.run.bind(g.system);
  let failing = true;
  const system: SetupSystem = { ...g.system, run: (command, args, input) => (command === 'partx' && failing ? (g.commands.push('partx (failed)'), { status: 1, stdout: '' }) : run(command, args, input)) };
  runSetup(g.paths, system, (line) => g.lines.push(line));
  assert.ok(g.lines.includes('canopy-setup: growing the data partition failed at partx; retried at the next boot'), g.lines.join('\n'));
  assert.ok(!g.commands.some((c) => c.startsWith('resize2fs')));
  assert.equal(leafJson(g)['leaf_name'], 'gw-05', 'the rest of the setup ran');

  failing = false;
  writeFileSync(join(g.paths.sysBlock, 'mmcblk0/mmcblk0p3/size'), `${64 * 2048}\n`); // the kernel still sees the old size
  runSetup(g.paths, system, (line) => g.lines.push(line));
  assert.ok(g.commands.includes('resize2fs /dev/mmcblk0p3'));
});
