/**
 * Options of the link, for `canopy leaf` and `canopy hub` (issue 4 "Processes"). They sit
 * beside the server options (core/server/options.ts): the same flag and config-file keys,
 * the same value syntax and errors. Each command accepts only its own side's keys.
 */
import { hostname } from 'node:os';
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
} as const satisfies Record<string, OptionSpec>;

export type LinkOptionKey = keyof typeof LINK_OPTION_SPECS;

/** The link keys each command takes (flags and config file); the other side's are refused. */
export const LINK_ROLE_KEYS: Readonly<Record<LinkRole, readonly LinkOptionKey[]>> = {
  hub: ['leaf_port', 'leaf_host', 'leaf_tokens', 'link_heartbeat'],
  leaf: ['hub', 'leaf_name', 'hub_token', 'link_heartbeat', 'link_compression'],
};

export type HubLinkOptions = {
  readonly role: 'hub';
  /** undefined = no leaf listener; 0 = a free port. */
  readonly port: number | undefined;
  readonly host: string;
  /** Leaf name → token. Empty: leaves are not asked for a token (loopback and tests only; a warning is logged). */
  readonly tokens: ReadonlyMap<string, string>;
  readonly heartbeatMs: number;
};

export type LeafLinkOptions = {
  readonly role: 'leaf';
  readonly hubUrls: readonly string[];
  readonly leafName: string;
  readonly hubToken: string | undefined;
  readonly heartbeatMs: number;
  readonly isCompressionWanted: boolean;
};

export type LinkOptions = HubLinkOptions | LeafLinkOptions;

/** Whether `key` is a link option (the rest of a config goes to resolveServerOptions). */
export function isLinkOptionKey(key: string): key is LinkOptionKey {
  return Object.hasOwn(LINK_OPTION_SPECS, key);
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
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || !isLinkOptionKey(key)) continue;
    if (!LINK_ROLE_KEYS[role].includes(key)) throw new ConfigError(key, `is an option of canopy ${role === 'hub' ? 'leaf' : 'hub'}, not of canopy ${role}`);
    if (key === 'leaf_tokens' && tokenObject !== undefined) continue;
    values.set(key, coerceOptionValue(key, LINK_OPTION_SPECS[key], value));
  }
  const heartbeatMs = (values.get('link_heartbeat') as number | undefined) ?? LINK_HEARTBEAT_MS_DEFAULT;
  if (role === 'hub') {
    const port = (values.get('leaf_port') as number | undefined) ?? LEAF_PORT_DEFAULT;
    return {
      role,
      port: port === 0 ? undefined : port === -1 ? 0 : port,
      host: (values.get('leaf_host') as string | undefined) ?? '0.0.0.0',
      tokens: tokenObject ?? parseTokenList(values.get('leaf_tokens') as string | undefined),
      heartbeatMs,
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
  };
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
