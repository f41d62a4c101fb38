/**
 * nats-server's operator mode (decentralized JWT auth): the server trusts one or
 * more operators (`operator`: their JWTs), knows accounts through a resolver (canopy
 * has `resolver: MEMORY`, filled by `resolver_preload`), and a client proves who it
 * is with a user JWT (CONNECT `jwt`) plus the user nkey's signature of the INFO
 * nonce (CONNECT `sig`): what the official clients send from a `.creds` file
 * (`credsAuthenticator`). Nothing about users is configured on the server.
 *
 * The chain (nats-server auth.go processClientOrLeafAuthentication, in our words):
 * the user JWT is signed by its account or by one of the account's signing keys
 * (then `issuer_account` names the account); the account JWT is signed by a trusted
 * operator or one of its signing keys; no JWT in the chain is expired or not yet
 * valid; the account has not revoked the user; the nonce signature verifies unless
 * the user JWT is a bearer token. The user's permissions come from its JWT (or from
 * the template of the scoped signing key that signed it; without any, from the
 * account's `default_permissions`) and become an ordinary permissions block
 * (permissions.ts).
 *
 * The configuration is a plain parsed value (OperatorMode) in AuthOptions, so a
 * config reload rebuilds it like the rest of `authorization`.
 */
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { ProtocolErrorText } from '../protocol/errors.ts';
import type { AuthExpiry, AuthResult } from './auth.ts';
import { ConfigError } from './config-error.ts';
import { isPlainObject } from './config-fields.ts';
import { decodeJwt, extractJwt, jwtTimeProblem, type JwtClaims } from './jwt.ts';
import { isPublicNkey, userNkeyVerifier, verifyNonceSignature } from './nkey.ts';
import { parsePermissions, type UserPermissions } from './permissions.ts';

/** An operator the server trusts, from its JWT. */
export type TrustedOperator = {
  readonly publicKey: string;
  readonly name: string;
  /** Keys that may sign account JWTs besides the operator's own. */
  readonly signingKeys: readonly string[];
  /** The operator JWT's `system_account`, if any. */
  readonly systemAccount: string | undefined;
};

/** Resolved operator-mode settings; undefined in AuthOptions when no `operator` is configured. */
export type OperatorMode = {
  readonly operators: readonly TrustedOperator[];
  /** Every operator identity and signing key: the keys that may issue account JWTs. */
  readonly trustedKeys: ReadonlySet<string>;
  /** `system_account` (or the operator JWT's); canopy has no system account services yet, the key is kept for them. */
  readonly systemAccount: string | undefined;
  /** `resolver_preload`: account public key → its verified claims (trust is checked per connection, as nats-server does). */
  readonly accounts: ReadonlyMap<string, JwtClaims>;
};

/** What a user JWT may restrict about the connection itself (`src`, `allowed_connection_types`). */
export type JwtClient = {
  readonly remoteAddress: string;
  /** nats-io/jwt's connection type names: `STANDARD` (TCP) or `WEBSOCKET`. */
  readonly connectionType: 'STANDARD' | 'WEBSOCKET';
};

/** The config keys of operator mode, as given (nats-server's names). */
export type OperatorModeConfig = {
  readonly operator: unknown;
  readonly systemAccount: unknown;
  readonly resolver: unknown;
  readonly resolverPreload: unknown;
};

/** nats-server reads an `operator` value starting like a JWT's header as the JWT itself, anything else as a file. */
const INLINE_JWT_PREFIX = 'eyJ';
/** User claims canopy does not enforce: a user JWT that sets one is refused rather than given more than it allows. */
const UNENFORCED_USER_CLAIMS = ['times'] as const;
/** User limits canopy does not enforce per user; -1 (and absent) mean unlimited, the nsc default. */
const UNENFORCED_USER_LIMITS = ['subs', 'data', 'payload'] as const;
const NANOSECONDS_PER_SECOND = 1e9;

/**
 * Validates `operator`, `system_account`, `resolver` and `resolver_preload`;
 * undefined when no operator is configured. Throws ConfigError naming the key.
 * `readText` reads an operator JWT file (tests pass their own).
 */
export function resolveOperatorMode(config: OperatorModeConfig, readText: (path: string) => string = (path) => readFileSync(path, 'utf8')): OperatorMode | undefined {
  if (config.operator === undefined) {
    for (const [key, value] of [['system_account', config.systemAccount], ['resolver', config.resolver], ['resolver_preload', config.resolverPreload]] as const) {
      if (value !== undefined) throw new ConfigError(key, 'needs "operator" (operator mode: the JWT of the operator to trust)');
    }
    return undefined;
  }
  const entries = Array.isArray(config.operator) ? config.operator : [config.operator];
  if (entries.length === 0) throw new ConfigError('operator', 'must name at least one operator JWT (a file path, or the JWT itself)');
  const operators = entries.map((entry: unknown, index) => readOperator(entry, Array.isArray(config.operator) ? `operator[${index}]` : 'operator', readText));
  checkResolver(config.resolver);
  const trustedKeys = new Set<string>();
  for (const operator of operators) {
    trustedKeys.add(operator.publicKey);
    for (const key of operator.signingKeys) trustedKeys.add(key);
  }
  return { operators, trustedKeys, systemAccount: resolveSystemAccount(config.systemAccount, operators), accounts: readPreload(config.resolverPreload) };
}

function readOperator(entry: unknown, key: string, readText: (path: string) => string): TrustedOperator {
  if (typeof entry !== 'string' || entry.trim() === '') throw new ConfigError(key, 'must be the path of an operator JWT file, or the JWT itself');
  let text = entry;
  if (!entry.startsWith(INLINE_JWT_PREFIX)) {
    try {
      text = readText(entry);
    } catch (err) {
      throw new ConfigError(key, `cannot read ${entry}: ${(err as Error).message}`);
    }
  }
  const decoded = decodeJwt(extractJwt(text), 'operator');
  if (decoded.error !== undefined) throw new ConfigError(key, `the operator JWT ${decoded.error}`);
  const { claims } = decoded;
  const signingKeys = stringList(claims.nats['signing_keys']);
  if (signingKeys === undefined || !signingKeys.every((signingKey) => isPublicNkey(signingKey, 'operator'))) {
    throw new ConfigError(key, 'the operator JWT\'s signing_keys must be operator public keys');
  }
  if (claims.iss !== claims.sub && !signingKeys.includes(claims.iss)) throw new ConfigError(key, 'the operator JWT is not signed by the operator or one of its signing keys');
  const timeProblem = jwtTimeProblem(claims, Date.now());
  if (timeProblem !== undefined) throw new ConfigError(key, `the operator JWT is ${timeProblem}`);
  const systemAccount = claims.nats['system_account'];
  if (systemAccount !== undefined && (typeof systemAccount !== 'string' || !isPublicNkey(systemAccount, 'account'))) {
    throw new ConfigError(key, 'the operator JWT\'s system_account must be an account public key');
  }
  return { publicKey: claims.sub, name: claims.name, signingKeys, systemAccount };
}

/** nats-server parity: opts.go validateTrustedOperators needs a resolver; canopy has the MEMORY one. */
function checkResolver(resolver: unknown): void {
  if (resolver === undefined) throw new ConfigError('resolver', 'operators require an account resolver to be configured (canopy: "MEMORY", with resolver_preload)');
  if (typeof resolver !== 'string' || resolver.toUpperCase() !== 'MEMORY') {
    throw new ConfigError('resolver', `canopy supports only "MEMORY" (accounts from resolver_preload); got ${JSON.stringify(resolver)}`);
  }
}

/** nats-server parity: opts.go validateTrustedOperators, the config's and the operator JWT's system account agree. */
function resolveSystemAccount(value: unknown, operators: readonly TrustedOperator[]): string | undefined {
  const fromOperators = operators.map((operator) => operator.systemAccount).filter((key) => key !== undefined);
  if (value === undefined) return fromOperators[0];
  if (typeof value !== 'string' || !isPublicNkey(value, 'account')) throw new ConfigError('system_account', 'must be an account public key (56 characters starting with "A")');
  if (fromOperators.length > 0 && !fromOperators.includes(value)) throw new ConfigError('system_account', 'system_account in config and operator JWT must be identical');
  return value;
}

function readPreload(value: unknown): Map<string, JwtClaims> {
  const accounts = new Map<string, JwtClaims>();
  if (value === undefined) return accounts;
  if (!isPlainObject(value)) throw new ConfigError('resolver_preload', 'must be an object of account public key → account JWT');
  for (const [key, jwt] of Object.entries(value)) {
    const path = `resolver_preload.${key}`;
    if (!isPublicNkey(key, 'account')) throw new ConfigError(path, 'the key must be an account public key (56 characters starting with "A")');
    if (typeof jwt !== 'string') throw new ConfigError(path, 'must be the account\'s JWT');
    const decoded = decodeJwt(jwt, 'account');
    if (decoded.error !== undefined) throw new ConfigError(path, `the account JWT ${decoded.error}`);
    if (decoded.claims.sub !== key) throw new ConfigError(path, 'the account JWT is for another account (its sub differs from the key)');
    accounts.set(key, decoded.claims);
  }
  return accounts;
}

/** A list of strings, [] when absent; undefined when it is something else. */
function stringList(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) return undefined;
  return value as string[];
}

// --- authentication ----------------------------------------------------------------------------

function refuse(reason: string, user: string | undefined): AuthResult {
  return { isAuthorized: false, reason, user };
}

/**
 * Authenticates a CONNECT in operator mode. `jwt` and `sig` are the CONNECT fields
 * ('' when absent); `reason` in a refusal names the failed link of the chain.
 */
export function authenticateJwt(options: {
  mode: OperatorMode;
  connect: { jwt: string; sig: string };
  nonce: string | undefined;
  client: JwtClient | undefined;
  nowMs: number;
}): AuthResult {
  const { mode, connect, nonce, client, nowMs } = options;
  if (connect.jwt === '') return refuse('no user JWT given (operator mode)', undefined);
  const decoded = decodeJwt(connect.jwt, 'user');
  if (decoded.error !== undefined) return refuse(`the user JWT ${decoded.error}`, undefined);
  const user = decoded.claims;
  const userProblem = jwtTimeProblem(user, nowMs);
  if (userProblem !== undefined) return refuse(`the user JWT is ${userProblem}`, user.sub);
  const issuerAccount = user.nats['issuer_account'];
  if (issuerAccount !== undefined && (typeof issuerAccount !== 'string' || !isPublicNkey(issuerAccount, 'account'))) {
    return refuse('the user JWT\'s issuer_account is not an account public key', user.sub);
  }
  const accountKey = issuerAccount ?? user.iss;
  const account = mode.accounts.get(accountKey);
  if (account === undefined) return refuse('unknown account (not in resolver_preload)', user.sub);
  if (!mode.trustedKeys.has(account.iss)) return refuse('the account JWT is not signed by a trusted operator', user.sub);
  const accountProblem = jwtTimeProblem(account, nowMs);
  if (accountProblem !== undefined) return refuse(`the account JWT is ${accountProblem}`, user.sub);
  const signer = userSigner(account, user.iss);
  if (signer === undefined) return refuse('the user JWT is not signed by its account or one of its signing keys', user.sub);
  if (isRevoked(account, user)) return refuse('the user JWT is revoked by its account', user.sub);
  const limits = signer.template ?? user.nats;
  const unenforced = unenforcedClaim(limits);
  if (unenforced !== undefined) return refuse(`the user JWT sets ${unenforced}, which canopy does not enforce`, user.sub);
  const clientProblem = checkClient(limits, client);
  if (clientProblem !== undefined) return refuse(clientProblem, user.sub);
  if (user.nats['bearer_token'] === true) {
    if (isPlainObject(account.nats['limits']) && account.nats['limits']['disallow_bearer'] === true) return refuse('the account does not allow bearer tokens', user.sub);
  } else {
    const verifier = userNkeyVerifier(user.sub);
    if (nonce === undefined || connect.sig === '' || verifier === undefined) return refuse('no nonce signature given', user.sub);
    if (!verifyNonceSignature(verifier, nonce, connect.sig)) return refuse('nonce signature does not verify', user.sub);
  }
  // nats-server parity: auth.go buildInternalNkeyUser, a user without permissions of its own gets the account's default_permissions.
  const own = jwtPermissions(limits);
  const accountDefaults = account.nats['default_permissions'];
  const permissions = own === undefined && isPlainObject(accountDefaults) ? jwtPermissions(accountDefaults) : own;
  if (typeof permissions === 'string') return refuse(`the user JWT's permissions are invalid: ${permissions}`, user.sub);
  return { isAuthorized: true, user: { kind: 'jwt', name: user.sub, permissions, account: accountKey, expiry: expiryOf(user, account) } };
}

/**
 * The account's key that signed a user: the account itself, a plain signing key, or a
 * scoped one (`{kind: "user_scope", key, template}`), whose template replaces the
 * user's own permissions (nats-server auth.go: a scoped user gets the scope's limits).
 */
function userSigner(account: JwtClaims, issuer: string): { template: Readonly<Record<string, unknown>> | undefined } | undefined {
  if (issuer === account.sub) return { template: undefined };
  const signingKeys = account.nats['signing_keys'];
  if (!Array.isArray(signingKeys)) return undefined;
  for (const entry of signingKeys) {
    if (entry === issuer) return { template: undefined };
    if (isPlainObject(entry) && entry['key'] === issuer) {
      return { template: isPlainObject(entry['template']) ? entry['template'] : {} };
    }
  }
  return undefined;
}

/** nats-io/jwt Revocations: a user is revoked when the account revoked its key, or `*`, at or after the JWT's `iat`. */
function isRevoked(account: JwtClaims, user: JwtClaims): boolean {
  const revocations = account.nats['revocations'];
  if (!isPlainObject(revocations)) return false;
  return [revocations['*'], revocations[user.sub]].some((at) => typeof at === 'number' && at >= user.iat);
}

function unenforcedClaim(limits: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of UNENFORCED_USER_CLAIMS) {
    const value = limits[name];
    const isSet = Array.isArray(value) ? value.length > 0 : typeof value === 'string' ? value !== '' : value !== undefined && value !== null;
    if (isSet) return `"${name}"`;
  }
  for (const name of UNENFORCED_USER_LIMITS) {
    const value = limits[name];
    if (value !== undefined && value !== -1) return `a "${name}" limit`;
  }
  return undefined;
}

/**
 * nats-server parity: auth.go validateSrc and the allowed connection types check. `src` lists
 * CIDRs (nats-io/jwt's CIDRList; a bare address counts as one host); the connection's address
 * must be in one. `allowed_connection_types`, when set, must name the connection's type.
 */
function checkClient(limits: Readonly<Record<string, unknown>>, client: JwtClient | undefined): string | undefined {
  const src = typeof limits['src'] === 'string' ? limits['src'].split(',').filter((entry) => entry.trim() !== '') : limits['src'];
  if (Array.isArray(src) && src.length > 0) {
    const allowed = sourceBlockList(src);
    if (allowed === undefined) return 'the user JWT\'s src is not a list of CIDRs';
    if (client === undefined || isIP(client.remoteAddress) === 0) return 'the user JWT\'s src needs the client address, which is unknown';
    if (!allowed.check(client.remoteAddress, isIP(client.remoteAddress) === 4 ? 'ipv4' : 'ipv6')) return 'the client address is not in the user JWT\'s src';
  } else if (src !== undefined && src !== null && !Array.isArray(src)) {
    return 'the user JWT\'s src is not a list of CIDRs';
  }
  const types = limits['allowed_connection_types'];
  if (types === undefined || types === null || (Array.isArray(types) && types.length === 0)) return undefined;
  if (!Array.isArray(types)) return 'the user JWT\'s allowed_connection_types is not a list';
  if (client === undefined || !types.includes(client.connectionType)) return `the user JWT does not allow ${client?.connectionType ?? 'this'} connections`;
  return undefined;
}

/** The `src` entries as a BlockList (used as an allow list); undefined when one is not a CIDR or address. */
function sourceBlockList(entries: readonly unknown[]): BlockList | undefined {
  const list = new BlockList();
  for (const entry of entries) {
    if (typeof entry !== 'string') return undefined;
    const [address = '', prefixText, ...rest] = entry.trim().split('/');
    const family = isIP(address);
    if (family === 0 || rest.length > 0 || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))) return undefined;
    const prefixMax = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? prefixMax : Number(prefixText);
    if (prefix > prefixMax) return undefined;
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/**
 * `{allow, deny}` of a JWT permission without empty lists: an empty allow list in a JWT means
 * "no restriction" (nats-server setPermissions). Anything but an object (absent: none) is
 * passed on for permissions.ts to refuse, so a malformed JWT never restricts less than it says.
 */
function subjectPermission(value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const name of ['allow', 'deny']) {
    const list = value[name];
    if (list !== undefined && list !== null && (!Array.isArray(list) || list.length > 0)) out[name] = list;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/**
 * A user JWT's `pub`, `sub` and `resp` as a permissions block (permissions.ts parses
 * and checks it: one parser for config and JWT permissions); undefined when it
 * restricts nothing, a message when a subject is invalid. `resp.ttl` is nanoseconds.
 */
function jwtPermissions(limits: Readonly<Record<string, unknown>>): UserPermissions | undefined | string {
  const block: Record<string, unknown> = {};
  const publish = subjectPermission(limits['pub']);
  const subscribe = subjectPermission(limits['sub']);
  if (publish !== undefined) block['publish'] = publish;
  if (subscribe !== undefined) block['subscribe'] = subscribe;
  const resp = limits['resp'];
  if (isPlainObject(resp)) {
    const ttl = resp['ttl'] ?? 0;
    block['allow_responses'] = { max: resp['max'] ?? 0, expires: typeof ttl === 'number' ? ttl / NANOSECONDS_PER_SECOND : ttl };
  } else if (resp !== undefined && resp !== null) {
    block['allow_responses'] = resp;
  }
  if (Object.keys(block).length === 0) return undefined;
  try {
    return parsePermissions(block, 'nats');
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
}

/** When the connection must close: the earlier of the user's and the account's `exp`, with nats-server's -ERR for each. */
function expiryOf(user: JwtClaims, account: JwtClaims): AuthExpiry | undefined {
  if (account.exp !== undefined && (user.exp === undefined || account.exp < user.exp)) {
    return { atMs: account.exp * 1000, errText: ProtocolErrorText.accountAuthenticationExpired };
  }
  return user.exp === undefined ? undefined : { atMs: user.exp * 1000, errText: ProtocolErrorText.userAuthenticationExpired };
}
