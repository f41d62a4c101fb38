/**
 * Client authentication as nats-server does it without operator mode: one token,
 * or users with passwords (plain or bcrypt), or users known by their nkey (an
 * Ed25519 signature of the per-connection INFO `nonce`). The config uses
 * nats-server's names (`authorization { token | user, password | users: [...] }`);
 * a user's `permissions` (or the block's `default_permissions`) are parsed by
 * permissions.ts and enforced by the connection. Users of the `accounts` block
 * (account-config.ts) join these, each in its account; the block's users belong to
 * the global account `$G`, and `no_auth_user` names the user a CONNECT without
 * credentials becomes. With the `tls` block's `verify_and_map`, the client certificate
 * names the user (cert-identity.ts) and such users need no password. With `operator`
 * configured the server is in operator mode instead (operator-mode.ts): users are JWTs
 * (`.creds` files), each in the account that signed it, and a CONNECT without one is
 * refused; without `operator` a CONNECT
 * carrying a JWT is refused.
 */
import { createHash, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { bcryptVerify, isBcryptHash, isWellFormedBcryptHash } from '../util/bcrypt.ts';
import { parseDurationMs } from '../util/duration.ts';
import { GLOBAL_ACCOUNT, type AccountUserEntry } from './account-config.ts';
import { mapCertToUser, userDnsOf, type UserDn } from './cert-identity.ts';
import { ConfigError } from './config-error.ts';
import { checkKnownKeys, isPlainObject, pick, type Fields } from './config-fields.ts';
import type { ClientTlsPeer } from './listener-tls.ts';
import { isUserPublicNkey, userNkeyVerifier, verifyNonceSignature } from './nkey.ts';
import { authenticateJwt, type JwtClient, type OperatorMode } from './operator-mode.ts';
import { parsePermissions, type UserPermissions } from './permissions.ts';

/** A user's parsed `permissions` block (permissions.ts). */
export type Permissions = UserPermissions;

export type PasswordUser = {
  readonly user: string;
  /** Plain text or a bcrypt hash (`$2a$…`); undefined for a user named by a certificate (`verify_and_map`). */
  readonly password: string | undefined;
  readonly permissions: Permissions | undefined;
  /** The account the user belongs to (`$G` for the `authorization` block's users). */
  readonly account: string;
};

export type NkeyUser = {
  /** The user's public nkey (`U…`). */
  readonly nkey: string;
  readonly permissions: Permissions | undefined;
  readonly account: string;
};

/** Resolved `authorization` settings; undefined in ServerOptions when no auth is configured. */
export type AuthOptions = {
  /** Plain text or a bcrypt hash; set only when no users are. */
  readonly token: string | undefined;
  /** The block's `permissions` (`default_permissions`): the token user's, and the default of users without their own. */
  readonly permissions: Permissions | undefined;
  readonly users: ReadonlyMap<string, PasswordUser>;
  readonly nkeyUsers: ReadonlyMap<string, NkeyUser>;
  /** `no_auth_user`: the user (name) a CONNECT without any credentials authenticates as. */
  readonly noAuthUser: string | undefined;
  /** `authorization.timeout`, which replaces `auth_timeout` as in nats-server. */
  readonly timeoutMs: number | undefined;
  /** `tls.verify_and_map`: users are named by the client certificate, not by CONNECT's `user`. */
  readonly isCertMapped: boolean;
  /** Operator mode (JWT users; operator-mode.ts); then token and users are empty. */
  readonly operatorMode?: OperatorMode | undefined;
};

/** When an authorization ends by itself (a JWT's `exp`): the connection is closed then, with `errText`. */
export type AuthExpiry = { readonly atMs: number; readonly errText: string };

/** Who a connection authenticated as (the connection's permissions and /connz `authorized_user` read it). */
export type AuthorizedUser = {
  readonly kind: 'token' | 'password' | 'nkey' | 'cert' | 'jwt';
  /** The user name (also when a certificate named it), the public nkey (also of a JWT user), or `[REDACTED]` for a token (nats-server's getRawAuthUser). */
  readonly name: string;
  readonly permissions: Permissions | undefined;
  /**
   * The account the connection joins: `$G` (GLOBAL_ACCOUNT) unless the user is defined in
   * `accounts`; a JWT user's account public key (the account the user belongs to).
   */
  readonly account: string;
  /** A JWT user's expiry; unset when the authorization does not expire. */
  readonly expiry?: AuthExpiry | undefined;
};

export type AuthResult =
  | { readonly isAuthorized: true; readonly user: AuthorizedUser }
  /** `reason` is for the log: it never holds a secret. `user` names who tried, when known. */
  | { readonly isAuthorized: false; readonly reason: string; readonly user: string | undefined };

/** nats-server's nonce: 11 random bytes, base64url without padding (15 characters). */
const NONCE_BYTES = 11;
/** Successful bcrypt checks remembered, so reconnect storms do not each pay the hash's CPU cost. */
const BCRYPT_CACHE_ENTRIES_MAX = 1024;
const TOKEN_NAME = '[REDACTED]';

const AUTHORIZATION_KEYS = ['user', 'username', 'pass', 'password', 'token', 'timeout', 'users', 'permissions', 'default_permissions'];
const USER_KEYS = ['user', 'username', 'pass', 'password', 'nkey', 'permissions'];

function secretField(fields: Fields, path: string, names: readonly string[]): string | undefined {
  const found = pick(fields, path, names);
  if (found === undefined) return undefined;
  if (typeof found.value !== 'string' || found.value === '') throw new ConfigError(found.key, 'must be a non-empty string');
  checkBcrypt(found.key, found.value);
  return found.value;
}

function checkBcrypt(key: string, secret: string): void {
  if (isBcryptHash(secret) && !isWellFormedBcryptHash(secret)) {
    throw new ConfigError(key, 'starts like a bcrypt hash ("$2a$NN$…") but is not a complete one (60 characters, cost 4-31)');
  }
}

function permissionsField(fields: Fields, path: string, names: readonly string[]): Permissions | undefined {
  const found = pick(fields, path, names);
  if (found === undefined) return undefined;
  return parsePermissions(found.value, found.key);
}

type UserMaps = { users: Map<string, PasswordUser>; nkeyUsers: Map<string, NkeyUser> };

/** Where each user and nkey was defined, so a second definition names both places. */
type DefinedAt = Map<string, string>;

/** Parses one `users` entry into `maps`; a user name or nkey defined before (in any account) is an error naming it. */
function addUser(entry: unknown, options: { path: string; account: string; defaults: Permissions | undefined; maps: UserMaps; definedAt: DefinedAt; isCertMapped: boolean }): void {
  const { path, account, maps, definedAt } = options;
  if (!isPlainObject(entry)) throw new ConfigError(path, 'must be an object with "user" and "password", or "nkey"');
  checkKnownKeys(entry, path, USER_KEYS);
  const permissions = permissionsField(entry, path, ['permissions']) ?? options.defaults;
  const nkey = entry['nkey'];
  const user = pick(entry, path, ['user', 'username']);
  const password = secretField(entry, path, ['password', 'pass']);
  const checkOnce = (id: string, key: string, label: string): void => {
    const earlier = definedAt.get(id);
    if (earlier !== undefined) throw new ConfigError(key, `${label} is defined twice (also at ${earlier})`);
    definedAt.set(id, path);
  };
  if (nkey !== undefined) {
    if (user !== undefined || password !== undefined) throw new ConfigError(`${path}.nkey`, 'a user has either an nkey or a user and password, not both');
    if (typeof nkey !== 'string' || !isUserPublicNkey(nkey)) {
      throw new ConfigError(`${path}.nkey`, 'must be a user public nkey (56 characters starting with "U")');
    }
    checkOnce(`nkey:${nkey}`, `${path}.nkey`, `nkey "${nkey}"`);
    maps.nkeyUsers.set(nkey, { nkey, permissions, account });
    return;
  }
  if (user === undefined) throw new ConfigError(path, 'needs "user" and "password", or "nkey"');
  if (typeof user.value !== 'string' || user.value === '') throw new ConfigError(user.key, 'must be a non-empty string');
  if (password === undefined && !options.isCertMapped) {
    throw new ConfigError(`${path}.password`, 'is required with "user" (unless tls.verify_and_map names users by their certificates)');
  }
  checkOnce(`user:${user.value}`, user.key, `user "${user.value}"`);
  maps.users.set(user.value, { user: user.value, password, permissions, account });
}

/**
 * Validates the `authorization` block and the `--auth`, `--user`, `--pass` flags
 * (which replace the block's token, user and password); undefined when no auth is
 * configured. Throws ConfigError naming the key for a bad shape.
 */
export function resolveAuthOptions(raw: {
  authorization: unknown;
  token: string;
  user: string;
  password: string;
  /** Users of the `accounts` block (account-config.ts), with their accounts' `default_permissions`. */
  accountUsers?: readonly AccountUserEntry[];
  accountDefaultPermissions?: ReadonlyMap<string, unknown>;
  /** `no_auth_user`; '' = none. */
  noAuthUser?: string;
  /** How `verify_and_map` was spelled when it is on (for errors); undefined when off. */
  certMapLabel?: string | undefined;
}): AuthOptions | undefined {
  const isCertMapped = raw.certMapLabel !== undefined;
  const block = raw.authorization ?? {};
  if (!isPlainObject(block)) {
    throw new ConfigError('authorization', 'must be an object such as {"token": "…"}, {"user": "…", "password": "…"} or {"users": [...]}');
  }
  checkKnownKeys(block, 'authorization', AUTHORIZATION_KEYS);
  if (raw.password !== '') checkBcrypt('pass', raw.password);
  if (raw.token !== '') checkBcrypt('auth', raw.token);
  const permissions = permissionsField(block, 'authorization', ['permissions', 'default_permissions']);
  const blockUser = pick(block, 'authorization', ['user', 'username']);
  if (blockUser !== undefined && (typeof blockUser.value !== 'string' || blockUser.value === '')) {
    throw new ConfigError(blockUser.key, 'must be a non-empty string');
  }
  const user = raw.user !== '' ? raw.user : (blockUser?.value as string | undefined);
  const password = raw.password !== '' ? raw.password : secretField(block, 'authorization', ['password', 'pass']);
  const token = raw.token !== '' ? raw.token : secretField(block, 'authorization', ['token']);
  let timeoutMs: number | undefined;
  if (block['timeout'] !== undefined) {
    const value = block['timeout'];
    timeoutMs = typeof value === 'string' || typeof value === 'number' ? parseDurationMs(value) : undefined;
    if (timeoutMs === undefined || timeoutMs < 10) {
      throw new ConfigError('authorization.timeout', 'must be a duration of at least 10 ms, such as 2 (seconds) or "500ms"');
    }
  }
  const maps: UserMaps = { users: new Map(), nkeyUsers: new Map() };
  const definedAt: DefinedAt = new Map();
  const blockUsers = block['users'];
  if (blockUsers !== undefined) {
    if (!Array.isArray(blockUsers)) throw new ConfigError('authorization.users', 'must be an array of {"user", "password"} or {"nkey"} objects');
    blockUsers.forEach((entry: unknown, index) => {
      addUser(entry, { path: `authorization.users[${index}]`, account: GLOBAL_ACCOUNT, defaults: permissions, maps, definedAt, isCertMapped });
    });
  }
  if (user !== undefined || password !== undefined) {
    if (user === undefined) throw new ConfigError(raw.password !== '' ? 'pass' : 'authorization.password', 'needs a user ("user" in the block, or --user)');
    if (password === undefined) throw new ConfigError(raw.user !== '' ? 'user' : 'authorization.user', 'needs a password ("password" in the block, or --pass)');
    if (blockUsers !== undefined) throw new ConfigError('authorization.users', 'cannot be combined with a single user and password');
    definedAt.set(`user:${user}`, raw.user !== '' ? 'user' : 'authorization.user');
    maps.users.set(user, { user, password, permissions, account: GLOBAL_ACCOUNT });
  }
  for (const { account, path, entry } of raw.accountUsers ?? []) {
    const accountDefaults = raw.accountDefaultPermissions?.get(account);
    const defaults = accountDefaults === undefined ? undefined : parsePermissions(accountDefaults, `accounts.${account}.default_permissions`);
    addUser(entry, { path, account, defaults, maps, definedAt, isCertMapped });
  }
  const { users, nkeyUsers } = maps;
  if (token !== undefined && users.size + nkeyUsers.size > 0) {
    throw new ConfigError(raw.token !== '' ? 'auth' : 'authorization.token', 'cannot be combined with users');
  }
  if (raw.certMapLabel !== undefined && users.size === 0) {
    throw new ConfigError(raw.certMapLabel, 'needs authorization.users: the users certificates are mapped to');
  }
  const noAuthUser = raw.noAuthUser === undefined || raw.noAuthUser === '' ? undefined : raw.noAuthUser;
  if (noAuthUser !== undefined && !users.has(noAuthUser)) {
    throw new ConfigError('no_auth_user', `"${noAuthUser}" is not a user of "authorization" or "accounts"`);
  }
  if (token === undefined && users.size === 0 && nkeyUsers.size === 0) {
    if (Object.keys(block).length > 0) throw new ConfigError('authorization', 'needs "token", "user" and "password", or "users"');
    return undefined;
  }
  return { token, permissions, users, nkeyUsers, noAuthUser, timeoutMs, isCertMapped };
}

/** A fresh nonce for one connection's INFO. */
export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64url');
}

function stringField(fields: Fields, key: string): string {
  const value = fields[key];
  return typeof value === 'string' ? value : '';
}

/** A CONNECT that carries no user, password, token, nkey or JWT. */
function hasNoCredentials(connect: Fields): boolean {
  return ['user', 'pass', 'auth_token', 'nkey', 'jwt'].every((key) => stringField(connect, key) === '');
}


/**
 * What a connection offers besides its CONNECT: the INFO nonce it signed, its TLS handshake
 * (verify_and_map), and what a JWT's `src` and connection types restrict.
 */
export type AuthContext = { readonly nonce: string | undefined; readonly tlsPeer: ClientTlsPeer | undefined; readonly client?: JwtClient | undefined };

/**
 * Checks CONNECT credentials against the configured users. One per server, made from a plain
 * AuthOptions value; a config reload makes a new one (passing the old, whose remembered bcrypt
 * checks stay valid: they are keyed by the hash) and re-checks every connection with it.
 */
export class Authenticator {
  readonly options: AuthOptions;
  /** nats-server sends a nonce when any nkey user exists. */
  readonly isNonceRequired: boolean;
  readonly #nkeyVerifiers: ReadonlyMap<string, KeyObject>;
  /** Keys `<hash>\n<sha256 of the password>` of bcrypt checks that passed, oldest first. */
  readonly #bcryptPassed: Set<string>;
  /** User names that are DNs, parsed once (verify_and_map). */
  readonly #userDns: readonly UserDn[];

  constructor(options: AuthOptions, previous?: Authenticator) {
    this.options = options;
    this.#userDns = options.isCertMapped ? userDnsOf(options.users.keys()) : [];
    this.isNonceRequired = options.nkeyUsers.size > 0 || options.operatorMode !== undefined;
    const verifiers = new Map<string, KeyObject>();
    for (const nkey of options.nkeyUsers.keys()) {
      const verifier = userNkeyVerifier(nkey);
      if (verifier !== undefined) verifiers.set(nkey, verifier);
    }
    this.#nkeyVerifiers = verifiers;
    this.#bcryptPassed = previous === undefined ? new Set() : previous.#bcryptPassed;
  }

  /**
   * nats-server's order (auth.go processClientOrLeafAuthentication): nkey, then user and password
   * (or, with verify_and_map, the certificate), then token; in operator mode the user JWT only.
   */
  authenticate(connect: Fields, context: AuthContext): AuthResult {
    const { nkeyUsers, users, token, operatorMode } = this.options;
    const { nonce } = context;
    if (operatorMode !== undefined) {
      const jwtConnect = { jwt: stringField(connect, 'jwt'), sig: stringField(connect, 'sig') };
      return authenticateJwt({ mode: operatorMode, connect: jwtConnect, nonce, client: context.client, nowMs: Date.now() });
    }
    if (stringField(connect, 'jwt') !== '') {
      return { isAuthorized: false, reason: 'a JWT (credentials) was given, but operator mode is off (no "operator" configured)', user: undefined };
    }
    const nkey = stringField(connect, 'nkey');
    if (nkeyUsers.size > 0 && nkey !== '') return this.#authenticateNkey(nkey, stringField(connect, 'sig'), nonce);
    if (users.size > 0 && this.options.isCertMapped) return this.#authenticateCert(connect, context.tlsPeer);
    const noAuthUser = this.options.noAuthUser;
    if (noAuthUser !== undefined && hasNoCredentials(connect)) {
      // nats-server parity: auth.go processClientOrLeafAuthentication, a CONNECT without credentials is no_auth_user.
      const user = users.get(noAuthUser);
      if (user !== undefined) return { isAuthorized: true, user: { kind: 'password', name: noAuthUser, permissions: user.permissions, account: user.account } };
    }
    if (users.size > 0) {
      const name = stringField(connect, 'user');
      const user = users.get(name);
      if (user === undefined) return { isAuthorized: false, reason: name === '' ? 'no user given' : 'unknown user', user: name };
      if (!this.#isSecretMatch(user.password ?? '', stringField(connect, 'pass'))) return { isAuthorized: false, reason: 'wrong password', user: name };
      return { isAuthorized: true, user: { kind: 'password', name, permissions: user.permissions, account: user.account } };
    }
    if (token !== undefined) {
      const given = stringField(connect, 'auth_token');
      if (given === '') return { isAuthorized: false, reason: 'no token given', user: undefined };
      if (!this.#isSecretMatch(token, given)) return { isAuthorized: false, reason: 'wrong token', user: undefined };
      return { isAuthorized: true, user: { kind: 'token', name: TOKEN_NAME, permissions: this.options.permissions, account: GLOBAL_ACCOUNT } };
    }
    return { isAuthorized: false, reason: 'no nkey given', user: undefined };
  }

  #authenticateNkey(nkey: string, signature: string, nonce: string | undefined): AuthResult {
    const user = this.options.nkeyUsers.get(nkey);
    const verifier = this.#nkeyVerifiers.get(nkey);
    if (user === undefined || verifier === undefined) return { isAuthorized: false, reason: 'unknown nkey', user: nkey };
    if (nonce === undefined || signature === '') return { isAuthorized: false, reason: 'no nonce signature given', user: nkey };
    if (!verifyNonceSignature(verifier, nonce, signature)) return { isAuthorized: false, reason: 'nonce signature does not verify', user: nkey };
    return { isAuthorized: true, user: { kind: 'nkey', name: nkey, permissions: user.permissions, account: user.account } };
  }

  /**
   * nats-server parity (auth.go processClientOrLeafAuthentication with tlsMap): the certificate
   * names the user; CONNECT's `user` is ignored; a mapped user that has a password still needs it.
   */
  #authenticateCert(connect: Fields, tlsPeer: ClientTlsPeer | undefined): AuthResult {
    const identity = tlsPeer?.certIdentity;
    if (identity === undefined) return { isAuthorized: false, reason: 'no verified client certificate to map to a user', user: undefined };
    const name = mapCertToUser(identity, this.options.users, this.#userDns);
    if (name === undefined) return { isAuthorized: false, reason: 'no user matches the client certificate', user: identity.subject };
    const user = this.options.users.get(name)!;
    if (user.password !== undefined && !this.#isSecretMatch(user.password, stringField(connect, 'pass'))) {
      return { isAuthorized: false, reason: 'wrong password', user: name };
    }
    return { isAuthorized: true, user: { kind: 'cert', name, permissions: user.permissions, account: user.account } };
  }

  /** nats-server's comparePasswords: bcrypt when the stored secret is a hash, else a constant-time compare. */
  #isSecretMatch(stored: string, given: string): boolean {
    if (!isBcryptHash(stored)) {
      const storedBytes = Buffer.from(stored, 'utf8');
      const givenBytes = Buffer.from(given, 'utf8');
      return storedBytes.length === givenBytes.length && timingSafeEqual(storedBytes, givenBytes);
    }
    const cacheKey = `${stored}\n${createHash('sha256').update(given, 'utf8').digest('base64')}`;
    if (this.#bcryptPassed.has(cacheKey)) return true;
    if (!bcryptVerify(given, stored)) return false;
    this.#bcryptPassed.add(cacheKey);
    if (this.#bcryptPassed.size > BCRYPT_CACHE_ENTRIES_MAX) {
      const oldest = this.#bcryptPassed.values().next().value;
      if (oldest !== undefined) this.#bcryptPassed.delete(oldest);
    }
    return true;
  }
}
