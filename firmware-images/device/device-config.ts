/**
 * The gateway's config file on the boot partition (`canopy.conf`): what a field engineer edits
 * on the SD card before the first boot. `key = value` lines and `#` comments, so that one bad
 * line never costs the others (a JSON syntax error would lose the whole file): each line is
 * checked on its own, a bad value is reported with its line and key, and the gateway keeps the
 * value it had before (or the default) and runs with everything else.
 *
 * Secrets (tokens, the Wi-Fi passphrase, the TLS key) are imported into the data partition and
 * their value on the boot partition is replaced by IMPORTED_MARK (`scrubSecrets`): the FAT
 * partition is readable by anyone holding the card. A line still saying `<imported>` keeps the
 * stored secret; a new value replaces it; a removed line removes it.
 *
 * Pure: no I/O (setup.ts reads and writes the files), unit-tested in test/firmware/.
 */
import { isIP, isIPv4 } from 'node:net';
import { isValidLeafName } from '../../core/server/link-options.ts';

/** What a secret's value becomes on the boot partition once it is imported. */
export const IMPORTED_MARK = '<imported>';
/** The leaf name (and host name) of a gateway whose file names none. */
export const LEAF_NAME_DEFAULT = 'canopy-leaf';
/** The longest line the file may hold (a certificate belongs in a file of its own). */
export const DEVICE_CONFIG_LINE_BYTES_MAX = 4096;
/** The biggest config file read; the rest is reported and ignored. */
export const DEVICE_CONFIG_BYTES_MAX = 64 * 1024;

type Check = (value: string) => { value?: string; problems: string[] };

type KeySpec = { readonly secret?: boolean; readonly check: Check; readonly describe: string };

const ok = (value: string): { value: string; problems: string[] } => ({ value, problems: [] });
const bad = (problem: string): { problems: string[] } => ({ problems: [problem] });

function port(allowOff: boolean): Check {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > 65535 || (n === 0 && !allowOff)) {
      return bad(`must be a port number, 1 to 65535${allowOff ? ' (0 = off)' : ''}, not ${JSON.stringify(value)}`);
    }
    return ok(String(n));
  };
}

const token: Check = (value) => (value !== '' && !/\s/.test(value) ? ok(value) : bad('must be one word without spaces'));

const bootFile: Check = (value) =>
  /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(value) && !value.split('/').includes('..')
    ? ok(value)
    : bad(`must be a file name on the boot partition, e.g. canopy/ca.pem, not ${JSON.stringify(value)}`);

/** A comma-separated list where each bad item is reported and the good ones are kept. */
function list(item: (one: string) => string | undefined, what: string): Check {
  return (value) => {
    const good: string[] = [];
    const problems: string[] = [];
    for (const one of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const why = item(one);
      if (why === undefined) good.push(one);
      else problems.push(why);
    }
    if (good.length === 0 && problems.length === 0) problems.push(`must list at least one ${what}`);
    return good.length > 0 ? { value: good.join(','), problems } : { problems };
  };
}

function hubUrl(one: string): string | undefined {
  let url: URL;
  try {
    url = new URL(one);
  } catch {
    return `${JSON.stringify(one)} is not a URL (ws://host:7422 or wss://host:7422)`;
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return `${JSON.stringify(one)} must start with ws:// or wss://`;
  if (url.hostname === '') return `${JSON.stringify(one)} has no host`;
  return undefined;
}

/** Every key the file may hold, in the order the template (stage.ts) lists them. */
export const DEVICE_CONFIG_KEYS: Readonly<Record<string, KeySpec>> = {
  leaf_name: {
    describe: 'this gateway\'s name on the hub: letters, digits, - and _ (default canopy-leaf)',
    check: (v) => (isValidLeafName(v) ? ok(v) : bad(`must be 1 to 64 letters, digits, - or _, not ${JSON.stringify(v)}`)),
  },
  hostname: {
    describe: 'the network host name (default: the leaf name)',
    check: (v) => (isHostName(v) ? ok(v.toLowerCase()) : bad(`must be a host name (letters, digits, -; at most 63), not ${JSON.stringify(v)}`)),
  },
  hub: { describe: 'hub URL(s), ws:// or wss://, comma-separated, tried in turn', check: list(hubUrl, 'hub URL') },
  hub_token: { secret: true, describe: 'the token this leaf presents to the hub (removed from this file once imported)', check: token },
  hub_tls_ca: { describe: 'CA bundle the hub\'s certificate must chain to, a file on this partition', check: bootFile },
  hub_tls_cert: { describe: 'client certificate (CN = leaf_name), a file on this partition', check: bootFile },
  hub_tls_key: { secret: true, describe: 'its private key, a file on this partition (deleted once imported)', check: bootFile },
  wifi_ssid: {
    describe: 'Wi-Fi network name (leave out for Ethernet only)',
    check: (v) => (Buffer.byteLength(v) <= 32 && v !== '' ? ok(v) : bad('must be 1 to 32 bytes')),
  },
  wifi_psk: {
    secret: true,
    describe: 'Wi-Fi passphrase, 8 to 63 characters (removed from this file once imported)',
    check: (v) => (/^[\x20-\x7e]{8,63}$/.test(v) || /^[0-9a-fA-F]{64}$/.test(v) ? ok(v) : bad('must be 8 to 63 printable ASCII characters (or 64 hex digits)')),
  },
  wifi_country: {
    describe: 'two-letter country code for Wi-Fi channels, e.g. DE',
    check: (v) => (/^[A-Za-z]{2}$/.test(v) ? ok(v.toUpperCase()) : bad(`must be a two-letter country code, not ${JSON.stringify(v)}`)),
  },
  ip_address: {
    describe: 'static IPv4 address of eth0 with its prefix, e.g. 192.168.1.50/24 (default: DHCP)',
    check: (v) => {
      const [address, prefix, extra] = v.split('/');
      const n = Number(prefix);
      return extra === undefined && isIPv4(address ?? '') && /^\d+$/.test(prefix ?? '') && n >= 1 && n <= 32
        ? ok(`${address}/${n}`)
        : bad(`must be an IPv4 address with a prefix length, e.g. 192.168.1.50/24, not ${JSON.stringify(v)}`);
    },
  },
  gateway: { describe: 'default router with ip_address', check: (v) => (isIPv4(v) ? ok(v) : bad(`must be an IPv4 address, not ${JSON.stringify(v)}`)) },
  dns: { describe: 'DNS servers with ip_address, comma-separated', check: list((one) => (isIP(one) ? undefined : `${JSON.stringify(one)} is not an IP address`), 'address') },
  port: { describe: 'NATS client port (default 4222)', check: port(false) },
  http_port: { describe: 'monitoring port: /healthz, /varz, /leafz (default 8222; 0 = off)', check: port(true) },
  http_host: {
    describe: 'monitoring listen address (default 127.0.0.1; 0.0.0.0 to reach it from the network)',
    check: (v) => (isIP(v) ? ok(v) : bad(`must be an IP address, not ${JSON.stringify(v)}`)),
  },
  monitor_token: { secret: true, describe: 'monitoring requires "Authorization: Bearer <token>" (removed once imported)', check: token },
  ssh_authorized_key: {
    describe: 'an SSH public key allowed to log in as root (password logins are off)',
    check: (v) => (/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/.test(v) ? ok(v) : bad('must be one OpenSSH public key line (ssh-ed25519 AAAA… comment)')),
  },
};

/** One thing wrong with the file: where, which key, and what the gateway does about it. */
export type ConfigProblem = { readonly line?: number; readonly key?: string; readonly message: string };

/** The settings the gateway runs with. */
export type DeviceSettings = {
  readonly leafName: string;
  readonly hostname: string;
  readonly hub: readonly string[];
  readonly hubToken?: string;
  readonly hubTlsCa?: string;
  readonly hubTlsCert?: string;
  readonly hubTlsKey?: string;
  readonly wifi?: { readonly ssid: string; readonly psk?: string; readonly country?: string };
  readonly staticIp?: { readonly address: string; readonly gateway?: string; readonly dns: readonly string[] };
  readonly port?: number;
  readonly httpPort?: number;
  readonly httpHost?: string;
  readonly monitorToken?: string;
  readonly sshAuthorizedKey?: string;
};

export type DeviceConfigResult = {
  readonly settings: DeviceSettings;
  /** The accepted raw values (secrets included): stored on the data partition as the next `previous`. */
  readonly accepted: Readonly<Record<string, string>>;
  readonly problems: readonly ConfigProblem[];
  /** Secret keys whose value came from this file (not from `previous`): scrub them from it. */
  readonly importedSecrets: readonly string[];
};

/**
 * Reads the file's text against the values accepted at the previous boot. `text` undefined: no
 * file on the boot partition (the previous values stand, reported once).
 */
export function parseDeviceConfig(text: string | undefined, previous: Readonly<Record<string, string>> = {}): DeviceConfigResult {
  const problems: ConfigProblem[] = [];
  const accepted: Record<string, string> = {};
  const importedSecrets: string[] = [];
  const lines = new Map<string, { line: number; value: string }>();
  if (text === undefined) {
    problems.push({ message: `canopy.conf is missing from the boot partition; running with the ${Object.keys(previous).length > 0 ? 'settings imported before' : 'defaults'}` });
    Object.assign(accepted, previous);
  } else {
    if (Buffer.byteLength(text) > DEVICE_CONFIG_BYTES_MAX) {
      problems.push({ message: `canopy.conf is larger than ${DEVICE_CONFIG_BYTES_MAX} bytes; the rest is ignored` });
      text = Buffer.from(text).subarray(0, DEVICE_CONFIG_BYTES_MAX).toString('utf8');
    }
    readLines(text.replace(/^\uFEFF/, ''), lines, problems);
    if (lines.size === 0 && Object.keys(previous).length > 0) {
      // Empty or damaged (a card pulled mid-write, a wrong file): not a request to forget everything.
      problems.push({ message: 'canopy.conf holds no settings (empty or damaged?); running with the settings imported before' });
      Object.assign(accepted, previous);
    }
  }
  for (const [key, spec] of Object.entries(DEVICE_CONFIG_KEYS)) {
    const entry = lines.get(key);
    if (entry === undefined) continue;
    const at = { line: entry.line, key };
    if (spec.secret === true && entry.value === IMPORTED_MARK) {
      if (previous[key] !== undefined) accepted[key] = previous[key];
      else problems.push({ ...at, message: `${key} says ${IMPORTED_MARK} but no ${key} was imported on this gateway; write the value again` });
      continue;
    }
    const checked = spec.check(entry.value);
    for (const why of checked.problems) problems.push({ ...at, message: `${key} ${why}${checked.value === undefined ? keeping(key, previous) : ' (ignored)'}` });
    if (checked.value !== undefined) {
      accepted[key] = checked.value;
      if (spec.secret === true) importedSecrets.push(key);
    } else if (previous[key] !== undefined) {
      accepted[key] = previous[key];
    }
  }
  return { settings: settingsOf(accepted, lines, problems), accepted, problems, importedSecrets };
}

function keeping(key: string, previous: Readonly<Record<string, string>>): string {
  return previous[key] !== undefined ? '; keeping the value imported before' : `; ${key} is left unset`;
}

function readLines(text: string, into: Map<string, { line: number; value: string }>, problems: ConfigProblem[]): void {
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (Buffer.byteLength(raw) > DEVICE_CONFIG_LINE_BYTES_MAX) {
      problems.push({ line, message: `the line is longer than ${DEVICE_CONFIG_LINE_BYTES_MAX} bytes; ignored` });
      return;
    }
    const eq = trimmed.indexOf('=');
    if (eq <= 0) {
      problems.push({ line, message: `not "key = value": ${JSON.stringify(trimmed.slice(0, 60))}; ignored` });
      return;
    }
    const key = trimmed.slice(0, eq).trim().toLowerCase();
    const value = unquote(trimmed.slice(eq + 1).trim());
    if (!Object.hasOwn(DEVICE_CONFIG_KEYS, key)) {
      problems.push({ line, key, message: `unknown key ${JSON.stringify(key)}; ignored (known: ${Object.keys(DEVICE_CONFIG_KEYS).join(', ')})` });
      return;
    }
    const before = into.get(key);
    if (before !== undefined) problems.push({ line, key, message: `${key} is set twice (lines ${before.line} and ${line}); the last one counts` });
    into.set(key, { line, value });
  });
}

/** `"a b"` or `'a b'` → `a b`: a Wi-Fi name may hold spaces, an editor may add quotes. */
function unquote(value: string): string {
  return value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0] ? value.slice(1, -1) : value;
}

function isHostName(value: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(value);
}

/** Typed settings from the accepted values, with the checks that span keys. */
function settingsOf(a: Record<string, string>, lines: Map<string, { line: number }>, problems: ConfigProblem[]): DeviceSettings {
  const at = (key: string): { line?: number; key: string } => ({ ...(lines.get(key) ? { line: lines.get(key)!.line } : {}), key });
  const drop = (key: string, message: string): void => {
    problems.push({ ...at(key), message });
    delete a[key];
  };
  if (a['leaf_name'] === undefined) problems.push({ key: 'leaf_name', message: `leaf_name is not set; using ${LEAF_NAME_DEFAULT}` });
  const leafName = a['leaf_name'] ?? LEAF_NAME_DEFAULT;
  if (a['hub_tls_key'] !== undefined && a['hub_tls_cert'] === undefined) drop('hub_tls_key', 'hub_tls_key needs hub_tls_cert; ignored');
  if (a['hub_tls_cert'] !== undefined && a['hub_tls_key'] === undefined) drop('hub_tls_cert', 'hub_tls_cert needs hub_tls_key; ignored');
  if (a['hub'] === undefined) problems.push({ key: 'hub', message: 'hub is not set: the leaf serves locally and keeps every message until a hub is set' });
  else if ((a['hub_tls_ca'] !== undefined || a['hub_tls_cert'] !== undefined) && !a['hub'].split(',').some((u) => u.startsWith('wss://'))) {
    problems.push({ ...at('hub_tls_ca'), message: 'hub_tls_* need a wss:// hub URL; ignored' });
    delete a['hub_tls_ca'];
    delete a['hub_tls_cert'];
    delete a['hub_tls_key'];
  }
  for (const key of ['wifi_psk', 'wifi_country']) if (a[key] !== undefined && a['wifi_ssid'] === undefined) drop(key, `${key} needs wifi_ssid; ignored`);
  for (const key of ['gateway', 'dns']) if (a[key] !== undefined && a['ip_address'] === undefined) drop(key, `${key} needs ip_address (DHCP gives its own); ignored`);
  if (a['port'] !== undefined && a['port'] === a['http_port']) drop('http_port', `http_port ${a['http_port']} is the NATS port too; using the default`);
  const num = (key: string): number | undefined => (a[key] === undefined ? undefined : Number(a[key]));
  return {
    leafName,
    hostname: a['hostname'] ?? (isHostName(leafName) ? leafName.toLowerCase() : LEAF_NAME_DEFAULT),
    hub: a['hub']?.split(',') ?? [],
    ...(a['hub_token'] !== undefined ? { hubToken: a['hub_token'] } : {}),
    ...(a['hub_tls_ca'] !== undefined ? { hubTlsCa: a['hub_tls_ca'] } : {}),
    ...(a['hub_tls_cert'] !== undefined ? { hubTlsCert: a['hub_tls_cert'], hubTlsKey: a['hub_tls_key']! } : {}),
    ...(a['wifi_ssid'] !== undefined
      ? { wifi: { ssid: a['wifi_ssid'], ...(a['wifi_psk'] !== undefined ? { psk: a['wifi_psk'] } : {}), ...(a['wifi_country'] !== undefined ? { country: a['wifi_country'] } : {}) } }
      : {}),
    ...(a['ip_address'] !== undefined
      ? { staticIp: { address: a['ip_address'], ...(a['gateway'] !== undefined ? { gateway: a['gateway'] } : {}), dns: a['dns']?.split(',') ?? [] } }
      : {}),
    ...(num('port') !== undefined ? { port: num('port')! } : {}),
    ...(num('http_port') !== undefined ? { httpPort: num('http_port')! } : {}),
    ...(a['http_host'] !== undefined ? { httpHost: a['http_host'] } : {}),
    ...(a['monitor_token'] !== undefined ? { monitorToken: a['monitor_token'] } : {}),
    ...(a['ssh_authorized_key'] !== undefined ? { sshAuthorizedKey: a['ssh_authorized_key'] } : {}),
  };
}

/**
 * The file's text with each imported secret's value replaced by IMPORTED_MARK (every other byte
 * kept: the engineer's comments and layout stay), or undefined when nothing needs scrubbing.
 */
export function scrubSecrets(text: string, imported: readonly string[]): string | undefined {
  if (imported.length === 0) return undefined;
  let changed = false;
  const out = text.split('\n').map((raw) => {
    const match = /^(\s*)([A-Za-z_]+)(\s*=\s*)(.*?)(\r?)$/.exec(raw);
    if (match === null || !imported.includes(match[2]!.toLowerCase()) || match[4] === IMPORTED_MARK) return raw;
    changed = true;
    return `${match[1]}${match[2]}${match[3]}${IMPORTED_MARK}${match[5]}`;
  });
  return changed ? out.join('\n') : undefined;
}

/** One line per problem, as the log, the console and the monitoring page show them. */
export function formatProblem(problem: ConfigProblem): string {
  return problem.line !== undefined ? `canopy.conf line ${problem.line}: ${problem.message}` : `canopy.conf: ${problem.message}`;
}
