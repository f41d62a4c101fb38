/**
 * Per-user authorization: publish and subscribe allow/deny lists and
 * `allow_responses`, as nats-server has them without accounts (its
 * `permissions` block, JSON config). Parsing turns the config into
 * {@link UserPermissions}; a {@link ConnectionPermissions} per connection makes
 * the decisions and caches them, so a connection without permissions pays one
 * `undefined` check per operation and a restricted one a Map lookup.
 *
 * Rules (nats-server parity: server/client.go `pubAllowedFullCheck`,
 * `canSubscribe`, `checkDenySub`, `deliverMsg`; server/opts.go
 * `parseUserPermissions`, `parseAllowResponses`):
 * - publish: allowed when the allow list (if any) has an entry matching the
 *   subject and the deny list has none. Deny wins.
 * - subscribe: the SUB subject, wildcards included, is matched against the
 *   entries as if it were published: a `*` or `>` token in the SUB subject only
 *   matches a wildcard entry token, so `foo.*` is allowed by `foo.*`, `foo.>` or
 *   `>` but not by `foo.bar`, and denied by deny `foo.*` but not by deny
 *   `foo.bar` (nats-server's sublist `Match` on the SUB subject). Entries may
 *   name a queue group (`"foo.* workers"`), which then decides for SUBs in a
 *   queue group; a queue pattern with wildcards matches queue names.
 * - delivery: a message whose subject a plain subscribe deny entry covers is
 *   not delivered to the connection, even through a wildcard SUB that was
 *   allowed (deny `foo.bar` with SUB `foo.>`).
 * - allow_responses: a connection may publish to the reply subject of a
 *   message delivered to it, up to `max` times within `expires` (negative:
 *   unlimited), even when its publish permissions do not allow that subject.
 *   Setting it without a publish allow list makes the allow list empty: the
 *   user may publish only responses (and nothing else).
 */
import { parseDurationMs } from '../util/duration.ts';
import { isValidSubject, subjectHasWildcard, subjectMatchesFilter } from '../subjects/subject.ts';
import { ConfigError } from './config-error.ts';
import { checkKnownKeys, isPlainObject, pick } from './config-fields.ts';

/** One permission entry: a subject (wildcards allowed) and, for subscribe entries only, a queue group pattern ('' for none). */
export type PermissionEntry = { readonly subject: string; readonly queue: string };

/** An allow list (undefined: everything allowed) and a deny list (undefined: nothing denied). */
export type SubjectPermission = {
  readonly allow: readonly PermissionEntry[] | undefined;
  readonly deny: readonly PermissionEntry[] | undefined;
};

/** `allow_responses`: how many replies per received request, and for how long. */
export type ResponsePermission = {
  /** Responses allowed per reply subject; 0 = unlimited (a negative `max` in the config). */
  readonly msgsMax: number;
  /** How long after delivery the reply subject may be published to; 0 = no limit (a negative `expires` in the config). */
  readonly expiresMs: number;
};

/** A user's parsed `permissions` block. */
export type UserPermissions = {
  readonly publish: SubjectPermission | undefined;
  readonly subscribe: SubjectPermission | undefined;
  readonly allowResponses: ResponsePermission | undefined;
};

/** nats-server `DEFAULT_ALLOW_RESPONSE_MAX_MSGS`. */
export const ALLOW_RESPONSE_MSGS_DEFAULT = 1;
/** nats-server `DEFAULT_ALLOW_RESPONSE_EXPIRATION` (2 minutes). */
export const ALLOW_RESPONSE_EXPIRES_MS_DEFAULT = 120_000;
/** Cached publish and delivery decisions per connection (nats-server `maxPermCacheSize`). */
export const PERMISSIONS_CACHE_ENTRIES_MAX = 128;
/** Entries dropped, oldest first, when a decision cache is full (nats-server `pruneSize`). */
const PERMISSIONS_CACHE_PRUNE_ENTRIES = 32;
/** Reply subjects remembered for allow_responses per connection (nats-server `replyPermLimit`). */
export const RESPONSE_REPLIES_ENTRIES_MAX = 4096;

const PERMISSIONS_KEYS = ['publish', 'pub', 'subscribe', 'sub', 'allow_responses', 'publish_allow_responses'];
const SUBJECT_PERMISSION_KEYS = ['allow', 'deny'];
const RESPONSE_KEYS = ['max', 'max_msgs', 'max_messages', 'max_responses', 'expires', 'expiration', 'ttl'];

/**
 * Validates a `permissions` (or `default_permissions`) block at config key `path`.
 * Throws ConfigError naming the offending key, down to the list index of a bad subject.
 */
export function parsePermissions(value: unknown, path: string): UserPermissions {
  if (!isPlainObject(value)) throw new ConfigError(path, 'must be an object such as {"publish": [...], "subscribe": [...]}');
  checkKnownKeys(value, path, PERMISSIONS_KEYS);
  const publishField = pick(value, path, ['publish', 'pub']);
  const subscribeField = pick(value, path, ['subscribe', 'sub']);
  const responsesField = pick(value, path, ['allow_responses', 'publish_allow_responses']);
  let publish = publishField === undefined ? undefined : parseSubjectPermission(publishField.value, publishField.key, false);
  const subscribe = subscribeField === undefined ? undefined : parseSubjectPermission(subscribeField.value, subscribeField.key, true);
  const allowResponses = responsesField === undefined ? undefined : parseAllowResponses(responsesField.value, responsesField.key);
  // nats-server parity: server/client.go setPermissions, response permissions turn off the blanket publish allow.
  if (allowResponses !== undefined && publish?.allow === undefined) publish = { allow: [], deny: publish?.deny };
  return { publish, subscribe, allowResponses };
}

/** `["a.>"]`, `"a.>"` (one subject) or `{allow: [...], deny: [...]}`. */
function parseSubjectPermission(value: unknown, path: string, isSubscribe: boolean): SubjectPermission {
  if (typeof value === 'string' || Array.isArray(value)) return { allow: parseEntries(value, path, isSubscribe), deny: undefined };
  if (!isPlainObject(value)) throw new ConfigError(path, 'must be a list of subjects or {"allow": [...], "deny": [...]}');
  checkKnownKeys(value, path, SUBJECT_PERMISSION_KEYS);
  const allow = value['allow'] === undefined ? undefined : parseEntries(value['allow'], `${path}.allow`, isSubscribe);
  const deny = value['deny'] === undefined ? undefined : parseEntries(value['deny'], `${path}.deny`, isSubscribe);
  return { allow, deny };
}

function parseEntries(value: unknown, path: string, isSubscribe: boolean): PermissionEntry[] {
  if (typeof value === 'string') return [parseEntry(value, path, isSubscribe)];
  if (!Array.isArray(value)) throw new ConfigError(path, 'must be a subject or a list of subjects');
  return value.map((item: unknown, index) => parseEntry(item, `${path}[${index}]`, isSubscribe));
}

/** A subject, or for subscribe lists `"<subject> <queue>"` (nats-server's queue permission form). */
function parseEntry(value: unknown, path: string, isSubscribe: boolean): PermissionEntry {
  if (typeof value !== 'string') throw new ConfigError(path, 'must be a subject string');
  const parts = value.trim().split(/\s+/);
  if (parts.length > 2 || (parts.length === 2 && !isSubscribe)) {
    throw new ConfigError(path, isSubscribe ? `"${value}" must be "<subject>" or "<subject> <queue>"` : `"${value}" must be one subject`);
  }
  const subject = parts[0] ?? '';
  if (!isValidSubject(subject)) throw new ConfigError(path, `"${value}" is not a valid subject`);
  const queue = parts[1] ?? '';
  if (queue !== '' && !isValidSubject(queue)) throw new ConfigError(path, `"${value}" has an invalid queue name`);
  return { subject, queue };
}

/**
 * `true` (1 response within 2 minutes), `false`, or `{max, expires}`: each defaults as for
 * `true` when absent or 0, and a negative value lifts the limit (nats-server parity:
 * opts.go parseAllowResponses, auth.go validateResponsePermissions).
 */
function parseAllowResponses(value: unknown, path: string): ResponsePermission | undefined {
  if (value === false) return undefined;
  if (value === true) return { msgsMax: ALLOW_RESPONSE_MSGS_DEFAULT, expiresMs: ALLOW_RESPONSE_EXPIRES_MS_DEFAULT };
  if (!isPlainObject(value)) throw new ConfigError(path, 'must be true, false or {"max": <count>, "expires": "<duration>"}');
  checkKnownKeys(value, path, RESPONSE_KEYS);
  let msgsMax = ALLOW_RESPONSE_MSGS_DEFAULT;
  let expiresMs = ALLOW_RESPONSE_EXPIRES_MS_DEFAULT;
  const max = pick(value, path, ['max', 'max_msgs', 'max_messages', 'max_responses']);
  if (max !== undefined) {
    if (typeof max.value !== 'number' || !Number.isSafeInteger(max.value)) {
      throw new ConfigError(max.key, 'must be a whole number of responses (0: the default 1, negative: unlimited)');
    }
    if (max.value !== 0) msgsMax = Math.max(max.value, 0);
  }
  const expires = pick(value, path, ['expires', 'expiration', 'ttl']);
  if (expires !== undefined) {
    const ms = signedDurationMs(expires.value);
    if (ms === undefined) throw new ConfigError(expires.key, 'must be a duration such as "1m" or 30 (seconds); 0: the default 2m, negative: no limit');
    if (ms !== 0) expiresMs = Math.max(ms, 0);
  }
  return { msgsMax, expiresMs };
}

/** A duration that may be negative ("-1s", -1), in milliseconds; undefined when it is not one. */
function signedDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (!text.startsWith('-')) return parseDurationMs(text);
  const ms = parseDurationMs(text.slice(1));
  return ms === undefined ? undefined : -ms;
}

// --- decisions ---------------------------------------------------------------------------------

/** True when the block restricts nothing (`"permissions": {}`): such a connection needs no checks at all. */
export function isUnrestricted(permissions: UserPermissions): boolean {
  return permissions.publish === undefined && permissions.subscribe === undefined && permissions.allowResponses === undefined;
}

function entryMatches(entries: readonly PermissionEntry[], subject: string): boolean {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.queue === '' && subjectMatchesFilter(subject, entry.subject)) return true;
  }
  return false;
}

/**
 * What the queue entries matching `subject` say about `queue`: undefined when no
 * queue entry matches the subject. nats-server parity: client.go `queueMatches`
 * (a queue pattern matches literally, or as a subject filter when it has wildcards).
 */
function queueEntryMatches(entries: readonly PermissionEntry[], subject: string, queue: string): boolean | undefined {
  let result: boolean | undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.queue === '' || !subjectMatchesFilter(subject, entry.subject)) continue;
    if (queue === entry.queue || (subjectHasWildcard(entry.queue) && subjectMatchesFilter(queue, entry.queue))) return true;
    result = false;
  }
  return result;
}

/** The allow/deny decision for a subject, without caches or allow_responses. */
export function isPublishAllowed(permission: SubjectPermission, subject: string): boolean {
  if (permission.allow !== undefined && !entryMatches(permission.allow, subject)) return false;
  return permission.deny === undefined || !entryMatches(permission.deny, subject);
}

/**
 * nats-server parity: client.go `canSubscribe`, with one deliberate difference: a
 * deny entry without a queue denies SUBs in every queue group (nats-server lets a
 * non-matching queue deny entry for the same subject re-allow them); deny wins.
 */
export function isSubscribeAllowed(permission: SubjectPermission, subject: string, queue: string): boolean {
  if (permission.allow !== undefined) {
    let isAllowed = entryMatches(permission.allow, subject);
    if (queue !== '') {
      const byQueue = queueEntryMatches(permission.allow, subject, queue);
      if (byQueue !== undefined) isAllowed = byQueue;
    }
    if (!isAllowed) return false;
  }
  if (permission.deny === undefined) return true;
  if (entryMatches(permission.deny, subject)) return false;
  return queue === '' || queueEntryMatches(permission.deny, subject, queue) !== true;
}

/** Adds a decision to a bounded cache, dropping the oldest entries when full. */
function cacheDecision(cache: Map<string, boolean>, subject: string, isAllowed: boolean): void {
  if (cache.size >= PERMISSIONS_CACHE_ENTRIES_MAX) {
    let dropped = 0;
    for (const key of cache.keys()) {
      cache.delete(key);
      if (++dropped >= PERMISSIONS_CACHE_PRUNE_ENTRIES) break;
    }
  }
  cache.set(subject, isAllowed);
}

type ReplyGrant = { readonly deliveredMs: number; count: number };

/**
 * One connection's view of its user's permissions: decisions with bounded
 * caches, and the reply subjects allow_responses opened for it.
 */
export class ConnectionPermissions {
  readonly permissions: UserPermissions;
  readonly #publishCache = new Map<string, boolean>();
  readonly #deliveryDeniedCache = new Map<string, boolean>();
  readonly #replies = new Map<string, ReplyGrant>();
  /** True when some plain subscribe deny entry exists: only then does delivery need a check. */
  readonly hasDeliveryDeny: boolean;

  constructor(permissions: UserPermissions) {
    this.permissions = permissions;
    const deny = permissions.subscribe?.deny;
    this.hasDeliveryDeny = deny !== undefined && deny.some((entry) => entry.queue === '');
  }

  /**
   * May the connection publish to `subject` now? Consumes one allow_responses use when that is
   * what allows it. `nowMs` is read only then (the clock stays off the allowed path).
   */
  canPublish(subject: string, nowMs: () => number = Date.now): boolean {
    const publish = this.permissions.publish;
    if (publish === undefined) return true;
    let isAllowed = this.#publishCache.get(subject);
    if (isAllowed === undefined) {
      isAllowed = isPublishAllowed(publish, subject);
      cacheDecision(this.#publishCache, subject, isAllowed);
    }
    return isAllowed || (this.permissions.allowResponses !== undefined && this.#useReply(subject, nowMs()));
  }

  canSubscribe(subject: string, queue: string): boolean {
    const subscribe = this.permissions.subscribe;
    return subscribe === undefined || isSubscribeAllowed(subscribe, subject, queue);
  }

  /** nats-server parity: client.go `checkDenySub`, the subscribe deny list applied to delivered subjects. */
  isDeliveryDenied(subject: string): boolean {
    if (!this.hasDeliveryDeny) return false;
    let isDenied = this.#deliveryDeniedCache.get(subject);
    if (isDenied === undefined) {
      isDenied = entryMatches(this.permissions.subscribe!.deny!, subject);
      cacheDecision(this.#deliveryDeniedCache, subject, isDenied);
    }
    return isDenied;
  }

  /** A message with reply subject `reply` was delivered to the connection (allow_responses). The clock is read only with allow_responses on. */
  onDeliveredReply(reply: string, clock: number | (() => number) = Date.now): void {
    if (this.permissions.allowResponses === undefined) return;
    const nowMs = typeof clock === 'number' ? clock : clock();
    if (this.#replies.size >= RESPONSE_REPLIES_ENTRIES_MAX && !this.#replies.has(reply)) this.#pruneReplies(nowMs);
    this.#replies.set(reply, { deliveredMs: nowMs, count: 0 });
  }

  /** nats-server parity: client.go `pubAllowedFullCheck`, the `c.replies` branch. */
  #useReply(subject: string, nowMs: number): boolean {
    const responses = this.permissions.allowResponses;
    if (responses === undefined) return false;
    const grant = this.#replies.get(subject);
    if (grant === undefined) return false;
    if (responses.expiresMs > 0 && nowMs - grant.deliveredMs > responses.expiresMs) {
      this.#replies.delete(subject);
      return false;
    }
    grant.count++;
    if (responses.msgsMax > 0 && grant.count >= responses.msgsMax) this.#replies.delete(subject);
    return true;
  }

  /** Drops expired grants; when none expired, the oldest one (Map order is delivery order). */
  #pruneReplies(nowMs: number): void {
    const expiresMs = this.permissions.allowResponses?.expiresMs ?? 0;
    if (expiresMs > 0) {
      for (const [reply, grant] of this.#replies) {
        if (nowMs - grant.deliveredMs > expiresMs) this.#replies.delete(reply);
      }
    }
    if (this.#replies.size < RESPONSE_REPLIES_ENTRIES_MAX) return;
    const oldest = this.#replies.keys().next();
    if (oldest.done !== true) this.#replies.delete(oldest.value);
  }
}

/** `Permissions Violation for Publish to "<subject>"` (nats-server client.go `pubPermissionViolation`; Go's %q quoting). */
export function publishViolationText(subject: string): string {
  return `Permissions Violation for Publish to ${JSON.stringify(subject)}`;
}

/** `Permissions Violation for Subscription to "<subject>"`, plus ` using queue "<queue>"` in a queue group (nats-server client.go `processSub`). */
export function subscriptionViolationText(subject: string, queue: string): string {
  const text = `Permissions Violation for Subscription to ${JSON.stringify(subject)}`;
  return queue === '' ? text : `${text} using queue ${JSON.stringify(queue)}`;
}

/**
 * A subscription a config reload no longer permits: `Permissions Violation for Subscription to
 * "<subject>" (sid "<sid>")` (nats-server client.go processSubsOnConfigReload; Go's %q quoting).
 */
export function reloadSubscriptionViolationText(subject: string, sid: string): string {
  return `Permissions Violation for Subscription to ${JSON.stringify(subject)} (sid ${JSON.stringify(sid)})`;
}
