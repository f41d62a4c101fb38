/** canopy.conf on a gateway's boot partition: parsing, validation line by line, previous values, secrets (firmware-images/device/device-config.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEVICE_CONFIG_BYTES_MAX,
  DEVICE_CONFIG_LINE_BYTES_MAX,
  formatProblem,
  IMPORTED_MARK,
  LEAF_NAME_DEFAULT,
  parseDeviceConfig,
  scrubSecrets,
} from '../../firmware-images/device/device-config.ts';

const GOOD = `# a gateway
leaf_name = gw-01
hub = wss://hub-a.example.com:7422, ws://10.0.0.5:7422
hub_token = s3cret
wifi_ssid = "Shop Floor"
wifi_psk = correct horse battery
wifi_country = de
ip_address = 192.168.1.50/24
gateway = 192.168.1.1
dns = 192.168.1.1, 9.9.9.9
port = 4333
http_port = 8333
http_host = 0.0.0.0
`;

const messages = (r: { problems: readonly { message: string }[] }): string[] => r.problems.map((p) => p.message);

test('a good file gives every setting and no problem; secrets are listed for scrubbing', () => {
  const r = parseDeviceConfig(GOOD);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.settings, {
    leafName: 'gw-01',
    hostname: 'gw-01',
    hub: ['wss://hub-a.example.com:7422', 'ws://10.0.0.5:7422'],
    hubToken: 's3cret',
    wifi: { ssid: 'Shop Floor', psk: 'correct horse battery', country: 'DE' },
    staticIp: { address: '192.168.1.50/24', gateway: '192.168.1.1', dns: ['192.168.1.1', '9.9.9.9'] },
    port: 4333,
    httpPort: 8333,
    httpHost: '0.0.0.0',
  });
  assert.deepEqual([...r.importedSecrets].sort(), ['hub_token', 'wifi_psk']);
  assert.equal(r.accepted['hub_token'], 's3cret');
});

test('each bad line is reported with its line and key, and the rest of the file still applies', () => {
  const text = GOOD.replace('port = 4333', 'port = 42x').replace('dns = 192.168.1.1, 9.9.9.9', 'dns = 192.168.1.1, not-an-ip') + 'colour = green\njust words\nwifi_psk = short\n';
  const r = parseDeviceConfig(text);
  const problems = r.problems.map(formatProblem);
  assert.ok(problems.includes('canopy.conf line 11: port must be a port number, 1 to 65535, not "42x"; port is left unset'), problems.join('\n'));
  assert.ok(problems.includes('canopy.conf line 10: dns "not-an-ip" is not an IP address (ignored)'), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('canopy.conf line 14: unknown key "colour"; ignored')), problems.join('\n'));
  assert.ok(problems.includes('canopy.conf line 15: not "key = value": "just words"; ignored'), problems.join('\n'));
  assert.ok(problems.some((p) => /line 16: wifi_psk is set twice \(lines 6 and 16\)/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /line 16: wifi_psk must be 8 to 63 printable ASCII characters/.test(p)), problems.join('\n'));
  assert.equal(r.settings.port, undefined);
  assert.deepEqual(r.settings.staticIp?.dns, ['192.168.1.1']);
  assert.equal(r.settings.leafName, 'gw-01');
  assert.equal(r.settings.hubToken, 's3cret');
  assert.equal(r.settings.wifi?.psk, undefined, 'a bad passphrase is not used');
});

test('a bad value keeps the value accepted at the previous boot', () => {
  const previous = parseDeviceConfig(GOOD).accepted;
  const r = parseDeviceConfig(GOOD.replace('hub = wss://hub-a.example.com:7422, ws://10.0.0.5:7422', 'hub = http://hub'), previous);
  assert.deepEqual(r.settings.hub, ['wss://hub-a.example.com:7422', 'ws://10.0.0.5:7422']);
  assert.deepEqual(messages(r), ['hub "http://hub" must start with ws:// or wss://; keeping the value imported before']);
});

test('an imported secret stays while the file says <imported>, is replaced by a new value, and goes with its line', () => {
  const first = parseDeviceConfig(GOOD);
  const scrubbed = scrubSecrets(GOOD, first.importedSecrets)!;
  assert.ok(!scrubbed.includes('s3cret') && !scrubbed.includes('correct horse'));
  assert.match(scrubbed, /^hub_token = <imported>$/m);
  assert.match(scrubbed, /^wifi_psk = <imported>$/m);
  assert.equal(scrubbed.replace(/<imported>/g, 'X').split('\n').length, GOOD.split('\n').length, 'comments and layout are kept');
  assert.equal(scrubSecrets(scrubbed, ['hub_token', 'wifi_psk']), undefined, 'nothing left to scrub');

  const second = parseDeviceConfig(scrubbed, first.accepted);
  assert.deepEqual(second.problems, []);
  assert.equal(second.settings.hubToken, 's3cret');
  assert.deepEqual(second.importedSecrets, []);

  const third = parseDeviceConfig(scrubbed.replace('hub_token = <imported>', 'hub_token = n3w'), first.accepted);
  assert.equal(third.settings.hubToken, 'n3w');
  assert.deepEqual(third.importedSecrets, ['hub_token']);

  const gone = parseDeviceConfig(scrubbed.replace('hub_token = <imported>\n', ''), first.accepted);
  assert.equal(gone.settings.hubToken, undefined);

  const never = parseDeviceConfig(`leaf_name = x\nhub = ws://h:1\nhub_token = ${IMPORTED_MARK}\n`);
  assert.deepEqual(messages(never), ['hub_token says <imported> but no hub_token was imported on this gateway; write the value again']);
});

test('no file, an empty file, a missing leaf_name or hub: defaults and a report, never a failure', () => {
  const none = parseDeviceConfig(undefined);
  assert.equal(none.settings.leafName, LEAF_NAME_DEFAULT);
  assert.match(messages(none)[0]!, /canopy\.conf is missing from the boot partition; running with the defaults/);
  const kept = parseDeviceConfig(undefined, { leaf_name: 'gw-9', hub: 'ws://h:1' });
  assert.equal(kept.settings.leafName, 'gw-9');
  assert.match(messages(kept)[0]!, /settings imported before/);
  const damaged = parseDeviceConfig('\0\0\0\0\n', { leaf_name: 'gw-9', hub: 'ws://h:1' });
  assert.equal(damaged.settings.leafName, 'gw-9', 'an empty or damaged file (a card pulled mid-write) does not reset the gateway');
  assert.deepEqual(damaged.settings.hub, ['ws://h:1']);
  assert.ok(messages(damaged).includes('canopy.conf holds no settings (empty or damaged?); running with the settings imported before'), messages(damaged).join('\n'));
  const empty = parseDeviceConfig('\uFEFF# nothing\n\n');
  assert.deepEqual(messages(empty), [`leaf_name is not set; using ${LEAF_NAME_DEFAULT}`, 'hub is not set: the leaf serves locally and keeps every message until a hub is set']);
  const underscore = parseDeviceConfig('leaf_name = gw_7\nhub = ws://h:1\n');
  assert.equal(underscore.settings.hostname, LEAF_NAME_DEFAULT, 'a leaf name that is no host name does not become one');
});

test('keys that need another key are dropped with a reason', () => {
  const r = parseDeviceConfig('leaf_name = a\nhub = ws://h:1\nhub_tls_ca = canopy/ca.pem\nhub_tls_key = k.pem\nwifi_psk = 12345678\ngateway = 10.0.0.1\nport = 5000\nhttp_port = 5000\n');
  assert.deepEqual(messages(r).sort(), [
    'gateway needs ip_address (DHCP gives its own); ignored',
    'http_port 5000 is the NATS port too; using the default',
    'hub_tls_* need a wss:// hub URL; ignored',
    'hub_tls_key needs hub_tls_cert; ignored',
    'wifi_psk needs wifi_ssid; ignored',
  ]);
  assert.equal(r.settings.hubTlsCa, undefined);
  assert.equal(r.settings.httpPort, undefined);
  assert.equal(r.settings.staticIp, undefined);
});

test('file names must stay on the boot partition; host names, addresses and keys are checked', () => {
  const r = parseDeviceConfig('leaf_name = a\nhub = wss://h:1\nhub_tls_ca = ../../etc/shadow\nhostname = -bad-\nip_address = 10.0.0.5\nhttp_host = localhost\nssh_authorized_key = hello\n');
  const all = messages(r).join('\n');
  assert.match(all, /hub_tls_ca must be a file name on the boot partition/);
  assert.match(all, /hostname must be a host name/);
  assert.match(all, /ip_address must be an IPv4 address with a prefix length/);
  assert.match(all, /http_host must be an IP address, not "localhost"/);
  assert.match(all, /ssh_authorized_key must be one OpenSSH public key line/);
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4xkY8yZ7 field@laptop';
  assert.equal(parseDeviceConfig(`ssh_authorized_key = ${key}\n`).settings.sshAuthorizedKey, key);
});

test('limits: an over-long line and an over-large file are reported and skipped, not fatal', () => {
  const long = `hub_token = ${'x'.repeat(DEVICE_CONFIG_LINE_BYTES_MAX)}\nleaf_name = ok-1\n`;
  const r = parseDeviceConfig(long);
  assert.equal(r.settings.leafName, 'ok-1');
  assert.equal(r.settings.hubToken, undefined);
  assert.ok(r.problems.map(formatProblem).includes(`canopy.conf line 1: the line is longer than ${DEVICE_CONFIG_LINE_BYTES_MAX} bytes; ignored`));
  const big = `leaf_name = big-1\n${'# padding\n'.repeat(DEVICE_CONFIG_BYTES_MAX / 10)}port = 4333\n`;
  const rb = parseDeviceConfig(big);
  assert.equal(rb.settings.leafName, 'big-1');
  assert.equal(rb.settings.port, undefined, 'what is past the limit is not read');
  assert.ok(messages(rb).includes(`canopy.conf is larger than ${DEVICE_CONFIG_BYTES_MAX} bytes; the rest is ignored`));
});

test('Windows line ends, quotes and upper-case keys, as an editor on a laptop writes them', () => {
  const r = parseDeviceConfig('LEAF_NAME = gw-2\r\nhub = "ws://h:7422"\r\nhub_token = abc\r\n');
  assert.deepEqual(r.problems, []);
  assert.equal(r.settings.leafName, 'gw-2');
  assert.deepEqual(r.settings.hub, ['ws://h:7422']);
  const scrubbed = scrubSecrets('LEAF_NAME = gw-2\r\nhub_token = abc\r\n', r.importedSecrets);
  assert.equal(scrubbed, 'LEAF_NAME = gw-2\r\nhub_token = <imported>\r\n');
});
