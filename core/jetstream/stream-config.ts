/**
 * StreamConfig defaults and validation, as nats-server applies them on
 * STREAM.CREATE / STREAM.UPDATE (NATS-SPEC.md §2.3, §5). The response echoes the
 * filled-in config; creating again with an identical filled-in config is idempotent.
 */
import { canonicalJson } from '../util/canonical-json.ts';
import { isValidLiteralSubject, isValidSubject, subjectsOverlap } from '../subjects/subject.ts';
import {
  newStreamInvalidConfigError,
  newStreamReplicasNotSupportedError,
  newStreamUpdateError,
  newStreamMirrorNotUpdatableError,
  newInvalidJSONError,
  JsApiError,
} from './api/errors.generated.ts';
import { readMetadata } from './config-metadata.ts';
import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from './api/types.ts';

/** Longest stream or consumer name (NATS-SPEC.md §1.8, ADR-6). */
export const NAME_CHARS_MAX = 255;
/** Longest description. */
export const DESCRIPTION_CHARS_MAX = 4096;
/** Default duplicate window: 2 minutes, in ns. */
export const DUPLICATE_WINDOW_NS_DEFAULT = 120_000_000_000;
/** Smallest max_age and duplicate_window nats-server accepts: 100 ms, in ns. */
export const DURATION_NS_MIN = 100_000_000;

/** Stream and consumer names: no whitespace, '.', '*', '>', path separators (NATS-SPEC.md §2.1). */
export function isValidName(name: string): boolean {
  if (name.length === 0 || name.length > NAME_CHARS_MAX) return false;
  return !/[\s.*>/\\]/.test(name);
}

type Raw = Record<string, unknown>;

function invalid(text: string): JsApiError {
  return newStreamInvalidConfigError({ err: text });
}

function intField(raw: Raw, key: string, fallback: number): number | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) return invalid(`${key} must be an integer`);
  return value;
}

/** -1 = unlimited; 0 means "not set" and becomes -1, as nats-server fills it. */
function limitField(raw: Raw, key: string): number | JsApiError {
  const value = intField(raw, key, -1);
  if (typeof value !== 'number') return value;
  return value === 0 ? -1 : value;
}

function enumField<T extends string>(raw: Raw, key: string, allowed: readonly T[], fallback: T): T | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    return invalid(`invalid ${key} ${JSON.stringify(value)}`);
  }
  return value as T;
}

function boolField(raw: Raw, key: string): boolean {
  return raw[key] === true;
}

/**
 * Fills in nats-server's defaults and checks what can be checked on the config
 * alone. Checks against other streams (subject overlap) are the caller's.
 */
export function normalizeStreamConfig(input: unknown): StreamConfig | JsApiError {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return invalid('invalid stream configuration');
  const raw = input as Raw;
  const name = typeof raw['name'] === 'string' ? raw['name'] : '';
  if (name === '') return invalid('stream name is required');
  if (name.length > NAME_CHARS_MAX) return invalid(`stream name is too long, maximum allowed is ${NAME_CHARS_MAX}`);
  if (!isValidName(name)) return invalid("stream name is required and can not contain '.', '*', '>'");
  const fields = {
    retention: enumField(raw, 'retention', RetentionPolicy, 'limits'),
    discard: enumField(raw, 'discard', DiscardPolicy, 'old'),
    storage: enumField(raw, 'storage', StorageType, 'file'),
    compression: enumField(raw, 'compression', ['none', 's2'] as const, 'none'),
    max_consumers: limitField(raw, 'max_consumers'),
    max_msgs: limitField(raw, 'max_msgs'),
    max_bytes: limitField(raw, 'max_bytes'),
    max_msgs_per_subject: limitField(raw, 'max_msgs_per_subject'),
    max_msg_size: limitField(raw, 'max_msg_size'),
    max_age: intField(raw, 'max_age', 0),
    duplicate_window: intField(raw, 'duplicate_window', 0),
    num_replicas: intField(raw, 'num_replicas', 1),
    first_seq: intField(raw, 'first_seq', 0),
  };
  for (const value of Object.values(fields)) if (typeof value === 'object') return value;
  const f = fields as { [K in keyof typeof fields]: Exclude<(typeof fields)[K], JsApiError> };
  if (f.num_replicas === 0) f.num_replicas = 1;
  if (f.num_replicas < 0) return invalid('replicas count cannot be negative');
  if (f.num_replicas > 1) return newStreamReplicasNotSupportedError();
  if (f.max_age < 0) return invalid('max age needs to be >= 0');
  if (f.max_age !== 0 && f.max_age < DURATION_NS_MIN) return invalid('max age needs to be >= 100ms');
  if (f.duplicate_window < 0) return invalid('duplicates window can not be negative');
  if (f.duplicate_window === 0) {
    f.duplicate_window = f.max_age !== 0 && f.max_age < DUPLICATE_WINDOW_NS_DEFAULT ? f.max_age : DUPLICATE_WINDOW_NS_DEFAULT;
  } else if (f.duplicate_window < DURATION_NS_MIN) {
    return invalid('duplicates window needs to be >= 100ms');
  }
  if (f.max_age !== 0 && f.duplicate_window > f.max_age) return invalid('duplicates window can not be larger then max age');
  const description = typeof raw['description'] === 'string' ? raw['description'] : '';
  if (description.length > DESCRIPTION_CHARS_MAX) return invalid(`description is too long, maximum allowed is ${DESCRIPTION_CHARS_MAX}`);

  const config: StreamConfig = {
    name,
    retention: f.retention,
    max_consumers: f.max_consumers,
    max_msgs: f.max_msgs,
    max_bytes: f.max_bytes,
    max_age: f.max_age,
    max_msgs_per_subject: f.max_msgs_per_subject,
    max_msg_size: f.max_msg_size,
    discard: f.discard,
    storage: f.storage,
    num_replicas: f.num_replicas,
    duplicate_window: f.duplicate_window,
    compression: f.compression,
    allow_direct: boolField(raw, 'allow_direct'),
    mirror_direct: boolField(raw, 'mirror_direct'),
    sealed: boolField(raw, 'sealed'),
    deny_delete: boolField(raw, 'deny_delete'),
    deny_purge: boolField(raw, 'deny_purge'),
    allow_rollup_hdrs: boolField(raw, 'allow_rollup_hdrs'),
    consumer_limits: {},
  };
  if (description !== '') config.description = description;
  if (boolField(raw, 'no_ack')) config.no_ack = true;
  if (boolField(raw, 'discard_new_per_subject')) config.discard_new_per_subject = true;
  if (f.first_seq > 0) config.first_seq = f.first_seq;
  const metadata = readMetadata(raw, (key, expected, value) => {
    const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    return newInvalidJSONError({ err: `json: cannot unmarshal ${got} into Go struct field StreamConfig.${key} of type ${expected}` });
  });
  if (metadata instanceof JsApiError) return metadata;
  if (metadata !== undefined) config.metadata = metadata;
  const passThrough = ['placement', 'mirror', 'sources', 'subject_transform', 'republish'] as const;
  for (const key of passThrough) {
    const value = raw[key];
    if (value !== undefined && value !== null) (config as Record<string, unknown>)[key] = value;
  }
  const limits = raw['consumer_limits'];
  if (limits !== null && typeof limits === 'object') {
    const { inactive_threshold: inactive, max_ack_pending: maxAckPending } = limits as Raw;
    if (typeof inactive === 'number' && inactive > 0) config.consumer_limits.inactive_threshold = inactive;
    if (typeof maxAckPending === 'number' && maxAckPending > 0) config.consumer_limits.max_ack_pending = maxAckPending;
  }
  return checkSubjects(raw, config) ?? checkPolicies(config) ?? config;
}

function checkSubjects(raw: Raw, config: StreamConfig): JsApiError | undefined {
  const subjects = raw['subjects'];
  if (subjects !== undefined && subjects !== null && !Array.isArray(subjects)) return invalid('subjects must be a list');
  const list = ((subjects as unknown[] | undefined) ?? []).filter((s): s is string => typeof s === 'string');
  if (config.mirror !== undefined) {
    if (list.length > 0) return invalid('stream mirrors can not contain subjects');
    if (config.sources !== undefined && config.sources.length > 0) return invalid('stream mirrors can not also contain other sources');
    if (config.first_seq !== undefined) return invalid('stream mirrors can not have first sequence configured');
    return undefined;
  }
  if (list.length === 0 && (config.sources === undefined || config.sources.length === 0)) list.push(config.name);
  for (let i = 0; i < list.length; i++) {
    const subject = list[i]!;
    if (!isValidSubject(subject)) return invalid(`invalid subject ${JSON.stringify(subject)}`);
    for (let j = 0; j < i; j++) {
      if (list[j] === subject) return invalid('duplicate subjects detected');
      if (subjectsOverlap(list[j]!, subject)) return invalid(`subject ${JSON.stringify(subject)} overlaps with ${JSON.stringify(list[j])}`);
    }
    const isSystem = ['$JS.>', '$JSC.>', '$NRG.>', '$SYS.>'].some((reserved) => subjectsOverlap(reserved, subject)) &&
      !subject.startsWith('$JS.EVENT.');
    if ((subject === '>' || isSystem) && config.no_ack !== true) {
      return invalid(`subjects that overlap with jetstream api require no-ack to be true`);
    }
  }
  if (list.length > 0) config.subjects = list;
  return undefined;
}

function checkPolicies(config: StreamConfig): JsApiError | undefined {
  if (config.deny_purge && config.allow_rollup_hdrs) return invalid('roll-ups require the purge permission');
  if (config.discard_new_per_subject === true) {
    if (config.discard !== 'new') return invalid('discard new per subject requires discard new policy to be set');
    if (config.max_msgs_per_subject <= 0) return invalid('discard new per subject requires max msgs per subject > 0');
  }
  // Like subjects: nats-server refuses a `sources` that is not a list when it unmarshals the config.
  if (config.sources !== undefined && !Array.isArray(config.sources)) return invalid('sources must be a list');
  for (const source of [...(config.mirror === undefined ? [] : [config.mirror]), ...(config.sources ?? [])]) {
    if (source === null || typeof source !== 'object' || typeof source.name !== 'string' || !isValidName(source.name)) {
      return invalid('sourced stream name is invalid');
    }
    if (source.filter_subject !== undefined && source.filter_subject !== '' && !isValidSubject(source.filter_subject)) {
      return invalid('source filter subject is invalid');
    }
  }
  if (config.republish !== undefined) {
    const { src, dest } = config.republish;
    if (typeof dest !== 'string' || !isValidLiteralSubject(dest.replaceAll('*', 'x').replaceAll('>', 'x'))) {
      return invalid('stream republish destination subject is invalid');
    }
    if (src !== undefined && src !== '' && !isValidSubject(src)) return invalid('stream republish source subject is invalid');
  }
  return undefined;
}

/** What an update may not change (nats-server stream.go checkStreamCfg / update rules). */
export function checkStreamUpdate(current: StreamConfig, next: StreamConfig): JsApiError | undefined {
  const fail = (text: string): JsApiError => newStreamUpdateError({ err: text });
  if (next.storage !== current.storage) return fail('stream configuration update can not change storage type');
  if ((current.retention === 'workqueue') !== (next.retention === 'workqueue')) {
    return fail('stream configuration update can not change retention policy to/from workqueue');
  }
  if (current.sealed && !next.sealed) return fail('stream configuration update can not unseal a sealed stream');
  if (current.deny_delete && !next.deny_delete) return fail('stream configuration update can not cancel deny message deletes');
  if (current.deny_purge && !next.deny_purge) return fail('stream configuration update can not cancel deny purge');
  if (JSON.stringify(current.mirror) !== JSON.stringify(next.mirror)) return newStreamMirrorNotUpdatableError();
  return undefined;
}

/** Stable comparison of two filled-in configs (idempotent create). */
export function sameStreamConfig(a: StreamConfig, b: StreamConfig): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

