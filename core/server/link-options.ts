/**
 * Options of the link, for `canopy leaf` and `canopy hub` (issue 4 "Processes"). They sit
 * beside the server options (core/server/options.ts): the same flag and config-file keys,
 * the same value syntax and errors. Each command accepts only its own side's keys.
 */
import { hostname } from 'node:os';
import { loadTlsMaterial, type TlsMaterial, type TlsFileSetting } from './tls-material.ts';
import { coerceOptionValue, ConfigError, type OptionSpec } from './options.ts';

/** The hub's WebSocket port for leaves (nats-server's leafnode port). */
export const LEAF_PORT_DEFAULT = 7422;
/** Heartbeat interval of a link: a silent link is declared dead after two. */
export const LINK_HEARTBEAT_MS_DEFAULT = 5000;
/** Longest leaf name: it becomes a subject token on the hub. */
export const LEAF_NAME_LENGTH_MAX = 64;

export type LinkRole = 'leaf' | 'hub';

export const LINK_OPTION_SPECS = {
  leaf_port: { kind: 'optional_port', describe: `hub: WebSocket port leaves connect to (default ${LEAF_PORT_DEFAULT}; 0 = off, -1 = a free port)` },
  leaf_host: { kind: 'string', describe: 'hub: listen address for leaves' },
  leaf_tokens: { kind: 'string', describe: 'hub: per-leaf tokens, "name=token,name2=token2" (config file: an object)' },
  hub: { kind: 'string', describe: 'leaf: hub URL(s), ws:// or wss://, comma-separated, tried in turn' },
  leaf_name: { kind: 'string', describe: 'leaf: this leaf\'s name, its namespace on the hub (default: the host name)' },
  hub_token: { kind: 'string', describe: 'leaf: the token this leaf presents to the hub' },
  link_heartbeat: { kind: 'duration', min: 100, describe: `heartbeat interval of the link (default ${LINK_HEARTBEAT_MS_DEFAULT / 1000}s)` },
  link_compression: { kind: 'bool', describe: 'leaf: ask the hub to compress batches (true or false)' },
  leaf_tls_cert: { kind: 'string', describe: 'hub: PEM certificate (chain) the leaf listener serves wss:// with (config file: leaf_tls.cert_file)' },
  leaf_tls_key: { kind: 'string', describe: 'hub: PEM private key of leaf_tls_cert (config file: leaf_tls.key_file)' },
  leaf_tls_ca: { kind: 'string', describe: 'hub: PEM CA bundle leaves\' client certificates must be signed by (config file: leaf_tls.ca_file)' },
  leaf_tls_verify: { kind: 'bool', describe: 'hub: require a client certificate signed by leaf_tls_ca; its subject CN is the leaf name (config file: leaf_tls.verify)' },
  hub_tls_ca: { kind: 'string', describe: 'leaf: PEM CA bundle the hub\'s certificate must be signed by (default: the system CAs; config file: hub_tls.ca_file)' },
  hub_tls_cert: { kind: 'string', describe: 'leaf: PEM client certificate, subject CN = leaf_name, for certificate auth (config file: hub_tls.cert_file)' },
  hub_tls_key: { kind: 'string', describe: 'leaf: PEM private key of hub_tls_cert (config file: hub_tls.key_file)' },
} as const satisfies Record<string, OptionSpec>;

export type LinkOptionKey = keyof typeof LINK_OPTION_SPECS;

/** The link keys each command takes (flags and config file); the other side's are refused. */
export const LINK_ROLE_KEYS: Readonly<Record<LinkRole, readonly LinkOptionKey[]>> = {
  hub: ['leaf_port', 'leaf_host', 'leaf_tokens', 'link_heartbeat', 'leaf_tls_cert', 'leaf_tls_key', 'leaf_tls_ca', 'leaf_tls_verify'],
  leaf: ['hub', 'leaf_name', 'hub_token', 'link_heartbeat', 'link_compression', 'hub_tls_ca', 'hub_tls_cert', 'hub_tls_key'],
};

/**
 * Config-file blocks with nats-server's TLS names (its `leafnodes { tls { … } }` block), each
 * inner key the same as one flag: `leaf_tls: { cert_file }` is `--leaf_tls_cert`. A flag
 * overrides the block's key.
 */
export const LINK_TLS_BLOCKS = {
  leaf_tls: { role: 'hub', keys: { cert_file: 'leaf_tls_cert', key_file: 'leaf_tls_key', ca_file: 'leaf_tls_ca', verify: 'leaf_tls_verify' } },
  hub_tls: { role: 'leaf', keys: { ca_file: 'hub_tls_ca', cert_file: 'hub_tls_cert', key_file: 'hub_tls_key' } },
} as const satisfies Record<string, { role: LinkRole; keys: Record<string, LinkOptionKey> }>;

export type LinkTlsBlockKey = keyof typeof LINK_TLS_BLOCKS;

/** The hub's leaf listener serves wss:// (`leaf_tls`). */
export type HubLinkTls = TlsMaterial & {
  readonly cert: Buffer;
  readonly key: Buffer;
  /**
   * `verify`: the TLS handshake requires a client certificate signed by `ca`, and that
   * certificate is the leaf's credential: its subject CN must be the leaf's name
   * (hub/ingest/README.md "Authorization").
   */
  readonly isClientCertRequired: boolean;
};

/** What the leaf trusts and presents on wss:// URLs (`hub_tls`). */
export type LeafLinkTls = TlsMaterial;

export type HubLinkOptions = {
  readonly role: 'hub';
  /** undefined = no leaf listener; 0 = a free port. */
  readonly port: number | undefined;
  readonly host: string;
  /** Leaf name → token. Empty: leaves are not asked for a token (loopback and tests only; a warning is logged). */
  readonly tokens: ReadonlyMap<string, string>;
  readonly heartbeatMs: number;
  /** Absent: the listener serves plain ws://. */
  readonly tls?: HubLinkTls;
};

export type LeafLinkOptions = {
  readonly role: 'leaf';
  readonly hubUrls: readonly string[];
  readonly leafName: string;
  readonly hubToken: string | undefined;
  readonly heartbeatMs: number;
  readonly isCompressionWanted: boolean;
  /** Absent: wss:// URLs use the system CAs and no client certificate. */
  readonly tls?: LeafLinkTls;
};

export type LinkOptions = HubLinkOptions | LeafLinkOptions;

/** Whether `key` is a link option (the rest of a config goes to resolveServerOptions). */
export function isLinkOptionKey(key: string): key is LinkOptionKey {
  return Object.hasOwn(LINK_OPTION_SPECS, key);
}

/** Whether a config file's `key` belongs to the link: a link option or a TLS block. */
export function isLinkConfigKey(key: string): boolean {
  return isLinkOptionKey(key) || Object.hasOwn(LINK_TLS_BLOCKS, key);
}

/** A leaf name is one subject token: letters, digits, `-` and `_`. */
export function isValidLeafName(name: string): boolean {
  return name.length > 0 && name.length <= LEAF_NAME_LENGTH_MAX && /^[A-Za-z0-9_-]+$/.test(name);
}

/** Resolves the link keys of `raw` for `role`; a key of the other side is a ConfigError. */
export function resolveLinkOptions(role: 'hub', raw: Record<string, unknown>): HubLinkOptions;
export function resolveLinkOptions(role: 'leaf', raw: Record<string, unknown>): LeafLinkOptions;
export function resolveLinkOptions(role: LinkRole, raw: Record<string, unknown>): LinkOptions;
export function resolveLinkOptions(role: LinkRole, raw: Record<string, unknown>): LinkOptions {
  const values = new Map<LinkOptionKey, string | number>();
  const tokenObject = role === 'hub' ? tokensFromObject(raw['leaf_tokens']) : undefined;
  const { settings, labels } = expandTlsBlocks(role, raw);
  for (const [key, value] of Object.entries(settings)) {
    if (value === undefined || !isLinkOptionKey(key)) continue;
    if (!LINK_ROLE_KEYS[role].includes(key)) throw new ConfigError(key, `is an option of canopy ${otherRole(role)}, not of canopy ${role}`);
    if (key === 'leaf_tokens' && tokenObject !== undefined) continue;
    values.set(key, coerceOptionValue(labels.get(key) ?? key, LINK_OPTION_SPECS[key], value));
  }
  const fileOf = (key: LinkOptionKey): TlsFileSetting | undefined => {
    const path = values.get(key) as string | undefined;
    return path === undefined ? undefined : { label: labels.get(key) ?? key, path };
  };
  const heartbeatMs = (values.get('link_heartbeat') as number | undefined) ?? LINK_HEARTBEAT_MS_DEFAULT;
  if (role === 'hub') {
    const port = (values.get('leaf_port') as number | undefined) ?? LEAF_PORT_DEFAULT;
    return {
      role,
      port: port === 0 ? undefined : port === -1 ? 0 : port,
      host: (values.get('leaf_host') as string | undefined) ?? '0.0.0.0',
      tokens: tokenObject ?? parseTokenList(values.get('leaf_tokens') as string | undefined),
      heartbeatMs,
      ...optional('tls', resolveHubTls({ cert: fileOf('leaf_tls_cert'), key: fileOf('leaf_tls_key'), ca: fileOf('leaf_tls_ca'), verify: values.get('leaf_tls_verify') === 'true', labels })),
    };
  }
  const hub = values.get('hub') as string | undefined;
  if (hub === undefined || hub.trim() === '') throw new ConfigError('hub', 'canopy leaf needs the hub URL (--hub ws://host:7422)');
  const hubUrls = hub.split(',').map((url) => url.trim()).filter((url) => url !== '');
  for (const url of hubUrls) {
    if (!/^wss?:\/\/[^/\s]+/.test(url)) throw new ConfigError('hub', `must be ws:// or wss:// URLs (got ${JSON.stringify(url)})`);
  }
  const leafName = (values.get('leaf_name') as string | undefined) ?? hostname().split('.')[0] ?? '';
  if (!isValidLeafName(leafName)) {
    throw new ConfigError('leaf_name', `must be 1 to ${LEAF_NAME_LENGTH_MAX} letters, digits, "-" or "_" (got ${JSON.stringify(leafName)})`);
  }
  return {
    role,
    hubUrls,
    leafName,
    hubToken: values.get('hub_token') as string | undefined,
    heartbeatMs,
    isCompressionWanted: values.get('link_compression') === 'true',
    ...optional('tls', resolveLeafTls({ cert: fileOf('hub_tls_cert'), key: fileOf('hub_tls_key'), ca: fileOf('hub_tls_ca'), hubUrls })),
  };
}

function otherRole(role: LinkRole): LinkRole {
  return role === 'hub' ? 'leaf' : 'hub';
}

/** `{ [key]: value }`, or nothing when value is undefined (optional fields stay absent). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * Replaces the config file's TLS blocks by their flag keys (a flag given too wins) and
 * remembers how each was spelled, so errors name `leaf_tls.cert_file` as the user wrote it.
 */
function expandTlsBlocks(role: LinkRole, raw: Record<string, unknown>): { settings: Record<string, unknown>; labels: Map<LinkOptionKey, string> } {
  const settings: Record<string, unknown> = {};
  const labels = new Map<LinkOptionKey, string>();
  for (const [block, spec] of Object.entries(LINK_TLS_BLOCKS) as [LinkTlsBlockKey, (typeof LINK_TLS_BLOCKS)[LinkTlsBlockKey]][]) {
    const value = raw[block];
    if (value === undefined) continue;
    if (spec.role !== role) throw new ConfigError(block, `is an option of canopy ${spec.role}, not of canopy ${role}`);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(block, `must be an object with ${Object.keys(spec.keys).join(', ')}`);
    const keys: Readonly<Record<string, LinkOptionKey>> = spec.keys;
    for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>)) {
      const key = keys[inner];
      if (key === undefined) throw new ConfigError(`${block}.${inner}`, `is not a key of ${block} (allowed: ${Object.keys(spec.keys).join(', ')})`);
      settings[key] = innerValue;
      labels.set(key, `${block}.${inner}`);
    }
  }
  for (const [key, value] of Object.entries(raw)) {
    if (Object.hasOwn(LINK_TLS_BLOCKS, key) || value === undefined) continue;
    settings[key] = value;
    if (isLinkOptionKey(key)) labels.delete(key);
  }
  return { settings, labels };
}

function resolveHubTls(options: {
  cert: TlsFileSetting | undefined;
  key: TlsFileSetting | undefined;
  ca: TlsFileSetting | undefined;
  verify: boolean;
  labels: ReadonlyMap<LinkOptionKey, string>;
}): HubLinkTls | undefined {
  const { cert, key, ca, verify } = options;
  const label = (name: LinkOptionKey): string => options.labels.get(name) ?? name;
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) throw new ConfigError(ca.label, 'needs leaf_tls_cert and leaf_tls_key: TLS on the leaf listener');
    if (verify) throw new ConfigError(label('leaf_tls_verify'), 'needs leaf_tls_cert and leaf_tls_key: TLS on the leaf listener');
    return undefined;
  }
  if (cert === undefined) throw new ConfigError(label('leaf_tls_cert'), 'is required with leaf_tls_key');
  if (key === undefined) throw new ConfigError(label('leaf_tls_key'), 'is required with leaf_tls_cert');
  // Without a CA of its own the hub would take client certificates from any public CA as leaf names.
  if (verify && ca === undefined) throw new ConfigError(label('leaf_tls_verify'), 'needs leaf_tls_ca: the CA that signs the leaves\' client certificates');
  const material = loadTlsMaterial({ cert, key, ...(ca === undefined ? {} : { ca }) });
  return { ...material, cert: material.cert!, key: material.key!, isClientCertRequired: verify };
}

function resolveLeafTls(options: {
  cert: TlsFileSetting | undefined;
  key: TlsFileSetting | undefined;
  ca: TlsFileSetting | undefined;
  hubUrls: readonly string[];
}): LeafLinkTls | undefined {
  const { cert, key, ca } = options;
  const given = cert ?? key ?? ca;
  if (given === undefined) return undefined;
  if (cert !== undefined && key === undefined) throw new ConfigError(cert.label, 'needs hub_tls_key, its private key');
  if (key !== undefined && cert === undefined) throw new ConfigError(key.label, 'needs hub_tls_cert, its certificate');
  if (!options.hubUrls.some((url) => url.startsWith('wss://'))) throw new ConfigError(given.label, 'is used only on wss:// hub URLs, and --hub has none');
  return loadTlsMaterial({ ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }), ...(ca === undefined ? {} : { ca }) });
}

function tokensFromObject(value: unknown): ReadonlyMap<string, string> | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const tokens = new Map<string, string>();
  for (const [name, token] of Object.entries(value as Record<string, unknown>)) {
    const text = typeof token === 'string' ? token : (token as { token?: unknown } | null)?.token;
    addToken(tokens, name, text);
  }
  return tokens;
}

function parseTokenList(list: string | undefined): ReadonlyMap<string, string> {
  const tokens = new Map<string, string>();
  if (list === undefined) return tokens;
  for (const entry of list.split(',')) {
    if (entry.trim() === '') continue;
    const at = entry.indexOf('=');
    addToken(tokens, at === -1 ? entry.trim() : entry.slice(0, at).trim(), at === -1 ? undefined : entry.slice(at + 1).trim());
  }
  return tokens;
}

function addToken(tokens: Map<string, string>, name: string, token: unknown): void {
  if (!isValidLeafName(name)) throw new ConfigError('leaf_tokens', `leaf name ${JSON.stringify(name)} is not a valid leaf name`);
  if (typeof token !== 'string' || token === '') throw new ConfigError('leaf_tokens', `leaf ${name} needs a non-empty token`);
  if (tokens.has(name)) throw new ConfigError('leaf_tokens', `leaf ${name} is listed twice`);
  tokens.set(name, token);
}
