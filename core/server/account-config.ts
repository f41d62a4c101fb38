/**
 * The `accounts` block, with nats-server's names (server/opts.go parseAccounts):
 *
 *   accounts: {
 *     A: { users: [ {user, password, permissions}, {nkey} ], jetstream: enabled,
 *          exports: [ {stream: "sub.>"}, {service: "svc.>", accounts: ["B"]} ] },
 *     B: { users: [...],
 *          imports: [ {stream: {account: A, subject: "sub.>"}, prefix: "p"},
 *                     {service: {account: A, subject: "svc.x"}, to: "x"} ] }
 *   }
 *
 * Parsing yields a plain value ({@link AccountsConfig}, kept in ServerOptions so a config
 * reload can swap it) and the accounts' users, which auth.ts merges with the
 * `authorization` block's (those belong to the global account `$G`). Every import is
 * checked against the exporting account's exports here: importing what is not
 * exported is a ConfigError naming the import.
 */
import { isSubjectSubset, isValidSubject, subjectsOverlap, tokenize } from '../subjects/subject.ts';
import { parseDurationMs } from '../util/duration.ts';
import { ConfigError } from './config-error.ts';
import { checkKnownKeys, isPlainObject, pick } from './config-fields.ts';

/** nats-server's global account: users of `authorization`, and every client when no auth is configured. */
export const GLOBAL_ACCOUNT = '$G';
/** nats-server `DEFAULT_SERVICE_EXPORT_RESPONSE_THRESHOLD`: how long a service import waits for a response. */
export const SERVICE_RESPONSE_THRESHOLD_MS_DEFAULT = 2 * 60 * 1000;

/** nats-server's `response_type` of a service export: how many responses one request may get. */
export const ServiceResponseType = { singleton: 'singleton', stream: 'stream', chunked: 'chunked' } as const;
export type ServiceResponseType = (typeof ServiceResponseType)[keyof typeof ServiceResponseType];

export type AccountExport =
  | {
      readonly kind: 'stream';
      /** The exported subject (wildcards allowed). */
      readonly subject: string;
      /** Accounts allowed to import it; undefined = public. */
      readonly accounts: readonly string[] | undefined;
    }
  | {
      readonly kind: 'service';
      readonly subject: string;
      readonly accounts: readonly string[] | undefined;
      readonly responseType: ServiceResponseType;
      /** How long after a request its responses are let back to the requester. */
      readonly responseThresholdMs: number;
    };

export type AccountImport = {
  readonly kind: 'stream' | 'service';
  /** The exporting account. */
  readonly account: string;
  /** The subject in the exporting account (covered by one of its exports). */
  readonly subject: string;
  /**
   * The subject in the importing account, with the same wildcards in the same order:
   * a stream import's messages arrive on it (`prefix` or `to`), a service import's
   * requests are published to it (`to`, default the subject itself).
   */
  readonly localSubject: string;
};

export type AccountConfig = {
  readonly name: string;
  /** `jetstream: enabled`: the account has its own JetStream (streams under its own store directory). */
  readonly isJetStreamEnabled: boolean;
  readonly exports: readonly AccountExport[];
  readonly imports: readonly AccountImport[];
};

/** Configured accounts by name; `$G` appears only when the config names it. */
export type AccountsConfig = ReadonlyMap<string, AccountConfig>;

/** One user entry of an account's `users` list, with where it came from (for errors). */
export type AccountUserEntry = { readonly account: string; readonly path: string; readonly entry: unknown };

const ACCOUNT_KEYS = ['users', 'exports', 'imports', 'jetstream', 'default_permissions'];
const EXPORT_KEYS = ['stream', 'service', 'accounts', 'response_type', 'response_threshold'];
const IMPORT_KEYS = ['stream', 'service', 'prefix', 'to'];
const IMPORT_SOURCE_KEYS = ['account', 'subject'];
/** Account names end up in a store directory name and in logs: printable, no whitespace. */
const ACCOUNT_NAME_PATTERN = /^[^\s\u0000-\u001f\u007f]{1,256}$/;

/**
 * Parses the `accounts` block (undefined: none). Returns the accounts and their users'
 * raw entries (auth.ts parses those with the `authorization` users' rules).
 */
export function resolveAccountsConfig(raw: unknown): { accounts: AccountsConfig; users: AccountUserEntry[]; defaultPermissions: Map<string, unknown> } {
  const accounts = new Map<string, AccountConfig>();
  const users: AccountUserEntry[] = [];
  const defaultPermissions = new Map<string, unknown>();
  if (raw === undefined) return { accounts, users, defaultPermissions };
  if (!isPlainObject(raw)) throw new ConfigError('accounts', 'must be an object of accounts by name, such as {"A": {"users": [...]}}');
  for (const [name, block] of Object.entries(raw)) {
    const path = `accounts.${name}`;
    if (!ACCOUNT_NAME_PATTERN.test(name)) throw new ConfigError(path, 'an account name must be 1-256 printable characters without spaces');
    if (!isPlainObject(block)) throw new ConfigError(path, 'must be an object such as {"users": [...], "jetstream": "enabled"}');
    checkKnownKeys(block, path, ACCOUNT_KEYS);
    const list = block['users'];
    if (list !== undefined) {
      if (!Array.isArray(list)) throw new ConfigError(`${path}.users`, 'must be an array of {"user", "password"} or {"nkey"} objects');
      list.forEach((entry: unknown, index) => users.push({ account: name, path: `${path}.users[${index}]`, entry }));
    }
    if (block['default_permissions'] !== undefined) defaultPermissions.set(name, block['default_permissions']);
    accounts.set(name, {
      name,
      isJetStreamEnabled: parseJetStreamSetting(block['jetstream'], `${path}.jetstream`),
      exports: parseList(block['exports'], `${path}.exports`, parseExport),
      imports: parseList(block['imports'], `${path}.imports`, (entry, entryPath) => parseImport(entry, entryPath, name)),
    });
  }
  for (const account of accounts.values()) checkImports(account, accounts);
  checkImportCycles(accounts);
  return { accounts, users, defaultPermissions };
}

/** nats-server accepts `enabled`/`disabled`, booleans, or a limits block (limits are not enforced per account by canopy). */
function parseJetStreamSetting(value: unknown, key: string): boolean {
  if (value === undefined || value === false || value === 'disabled' || value === 'false') return false;
  if (value === true || value === 'enabled' || value === 'true') return true;
  if (isPlainObject(value) && Object.keys(value).length === 0) return true;
  throw new ConfigError(key, 'must be "enabled" or "disabled" (per-account JetStream limits are not supported)');
}

function parseList<T>(value: unknown, path: string, parse: (entry: Record<string, unknown>, path: string) => T): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(path, 'must be an array');
  return value.map((entry: unknown, index) => {
    const entryPath = `${path}[${index}]`;
    if (!isPlainObject(entry)) throw new ConfigError(entryPath, 'must be an object');
    return parse(entry, entryPath);
  });
}

function subjectField(value: unknown, key: string): string {
  if (typeof value !== 'string' || !isValidSubject(value)) throw new ConfigError(key, `must be a valid subject (got ${JSON.stringify(value)})`);
  return value;
}

function parseExport(entry: Record<string, unknown>, path: string): AccountExport {
  checkKnownKeys(entry, path, EXPORT_KEYS);
  const found = pick(entry, path, ['stream', 'service']);
  if (found === undefined) throw new ConfigError(path, 'needs "stream" or "service"');
  const subject = subjectField(found.value, found.key);
  const accountsValue = entry['accounts'];
  let accounts: string[] | undefined;
  if (accountsValue !== undefined) {
    if (!Array.isArray(accountsValue) || accountsValue.some((name) => typeof name !== 'string' || name === '')) {
      throw new ConfigError(`${path}.accounts`, 'must be an array of account names');
    }
    accounts = accountsValue as string[];
  }
  if (found.key.endsWith('.stream')) {
    for (const key of ['response_type', 'response_threshold']) {
      if (entry[key] !== undefined) throw new ConfigError(`${path}.${key}`, 'applies to service exports only');
    }
    return { kind: 'stream', subject, accounts };
  }
  const typeValue = entry['response_type'] ?? 'singleton';
  const responseType = typeof typeValue === 'string' ? (ServiceResponseType as Record<string, ServiceResponseType>)[typeValue.toLowerCase()] : undefined;
  if (responseType === undefined) throw new ConfigError(`${path}.response_type`, 'must be "Singleton", "Stream" or "Chunked"');
  const thresholdValue = entry['response_threshold'];
  let responseThresholdMs = SERVICE_RESPONSE_THRESHOLD_MS_DEFAULT;
  if (thresholdValue !== undefined) {
    const parsed = typeof thresholdValue === 'string' || typeof thresholdValue === 'number' ? parseDurationMs(thresholdValue) : undefined;
    if (parsed === undefined || parsed <= 0) throw new ConfigError(`${path}.response_threshold`, 'must be a positive duration such as "2m" or "500ms"');
    responseThresholdMs = parsed;
  }
  return { kind: 'service', subject, accounts, responseType, responseThresholdMs };
}

function parseImport(entry: Record<string, unknown>, path: string, importer: string): AccountImport {
  checkKnownKeys(entry, path, IMPORT_KEYS);
  const found = pick(entry, path, ['stream', 'service']);
  if (found === undefined) throw new ConfigError(path, 'needs "stream" or "service"');
  const kind = found.key.endsWith('.stream') ? 'stream' : 'service';
  const source = found.value;
  if (!isPlainObject(source)) throw new ConfigError(found.key, 'must be {"account": "…", "subject": "…"}');
  checkKnownKeys(source, found.key, IMPORT_SOURCE_KEYS);
  const account = source['account'];
  if (typeof account !== 'string' || account === '') throw new ConfigError(`${found.key}.account`, 'must name the exporting account');
  if (account === importer) throw new ConfigError(`${found.key}.account`, `an account cannot import from itself ("${account}")`);
  const subject = subjectField(source['subject'], `${found.key}.subject`);
  const prefix = entry['prefix'];
  const to = entry['to'];
  if (prefix !== undefined && to !== undefined) throw new ConfigError(`${path}.prefix`, 'cannot be given together with "to"');
  let localSubject = subject;
  if (prefix !== undefined) {
    if (kind === 'service') throw new ConfigError(`${path}.prefix`, 'applies to stream imports only (a service import takes "to")');
    localSubject = `${subjectField(prefix, `${path}.prefix`)}.${subject}`;
    if (!isValidSubject(localSubject)) throw new ConfigError(`${path}.prefix`, 'must not end with a wildcard');
  } else if (to !== undefined) {
    localSubject = subjectField(to, `${path}.to`);
    if (wildcardShape(localSubject) !== wildcardShape(subject)) {
      throw new ConfigError(`${path}.to`, `must have the same wildcards, in the same order, as the subject "${subject}"`);
    }
  }
  return { kind, account, subject, localSubject };
}

/** The sequence of wildcard tokens of a subject (`*`, `*>`, …): a mapping keeps them. */
function wildcardShape(subject: string): string {
  return tokenize(subject)
    .filter((token) => token === '*' || token === '>')
    .join('');
}

function checkImports(account: AccountConfig, accounts: AccountsConfig): void {
  account.imports.forEach((entry, index) => {
    const key = `accounts.${account.name}.imports[${index}].${entry.kind}`;
    const exporter = accounts.get(entry.account);
    if (exporter === undefined) throw new ConfigError(`${key}.account`, `account "${entry.account}" is not defined`);
    const exported = exportFor(exporter, entry);
    if (exported === undefined) {
      throw new ConfigError(`${key}.subject`, `${entry.kind} "${entry.subject}" is not exported by account "${entry.account}"`);
    }
    if (exported.accounts !== undefined && !exported.accounts.includes(account.name)) {
      throw new ConfigError(`${key}.subject`, `${entry.kind} "${entry.subject}" of account "${entry.account}" is not exported to account "${account.name}"`);
    }
  });
}

/** Where messages go through one import: from (account, subject) to (account, subject). */
type Flow = { readonly from: string; readonly fromSubject: string; readonly to: string; readonly toSubject: string; readonly key: string };

/** Imports followed from one start before the search gives up (nats-server bounds its search too). */
const CYCLE_SEARCH_DEPTH_MAX = 32;

/**
 * nats-server parity (accounts.go checkStreamImportsForCycles / checkServiceImportsForCycles):
 * imports through which a message could come back to where it started are a config error.
 * A stream import carries messages from the exporter to the importer, a service import
 * requests from the importer to the exporter; subjects are compared as patterns (overlap),
 * so the check may refuse a mapping that would in fact end, never miss a cycle.
 */
function checkImportCycles(accounts: AccountsConfig): void {
  const flows: Flow[] = [];
  for (const account of accounts.values()) {
    account.imports.forEach((entry, index) => {
      const key = `accounts.${account.name}.imports[${index}].${entry.kind}`;
      if (entry.kind === 'stream') flows.push({ from: entry.account, fromSubject: entry.subject, to: account.name, toSubject: entry.localSubject, key });
      else flows.push({ from: account.name, fromSubject: entry.localSubject, to: entry.account, toSubject: entry.subject, key });
    });
  }
  for (const start of flows) {
    const path = [start.key];
    /** (account, subject) states already searched from this start: each is searched once. */
    const visited = new Set<string>();
    const reachesStart = (account: string, subject: string, depth: number): boolean => {
      if (account === start.from && subjectsOverlap(subject, start.fromSubject)) return true;
      const state = `${account}\n${subject}`;
      if (depth >= CYCLE_SEARCH_DEPTH_MAX || visited.has(state)) return false;
      visited.add(state);
      for (const next of flows) {
        if (next.from !== account || !subjectsOverlap(next.fromSubject, subject)) continue;
        path.push(next.key);
        if (reachesStart(next.to, next.toSubject, depth + 1)) return true;
        path.pop();
      }
      return false;
    };
    if (reachesStart(start.to, start.toSubject, 0)) {
      throw new ConfigError(start.key, `import forms a cycle: ${path.join(' -> ')}`);
    }
  }
}

/** The export of `exporter` that serves `entry` (resolveAccountsConfig checked there is one). */
export function exportFor(exporter: AccountConfig, entry: AccountImport): AccountExport | undefined {
  return exporter.exports.find((candidate) => candidate.kind === entry.kind && isSubjectSubset(entry.subject, candidate.subject));
}
