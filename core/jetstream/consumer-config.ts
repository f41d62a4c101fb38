/**
 * ConsumerConfig: parsing, nats-server's defaults and validation, with its
 * error codes (NATS-SPEC.md §2.5 "Create semantics"), and the update rules.
 *
 * nats-server parity: server/consumer.go setConsumerConfigDefaults,
 * checkConsumerCfg, checkNewConsumerConfig and the work-queue rules of
 * addConsumerWithAssignment. Fields nats-server 2.10 does not know
 * (pause_until, priority_*) are dropped, as a 2.10 server's JSON decoding does.
 */
import { canonicalJson } from '../util/canonical-json.ts';
import { isSubjectSubset, isValidSubject, subjectIsLiteral, subjectMatchesFilter } from '../subjects/subject.ts';
import { parseRfc3339Ns, formatRfc3339Ns } from '../util/time.ts';
import {
  JsApiError,
  newConsumerAckWaitNegativeError,
  newConsumerBackOffNegativeError,
  newConsumerCreateDurableAndNameMismatchError,
  newConsumerCreateError,
  newConsumerDeliverCycleError,
  newConsumerDeliverToWildcardsError,
  newConsumerDescriptionTooLongError,
  newConsumerDuplicateFilterSubjectsError,
  newConsumerEmptyFilterError,
  newConsumerFCRequiresPushError,
  newConsumerHBRequiresPushError,
  newConsumerInactiveThresholdExcessError,
  newConsumerInvalidDeliverSubjectError,
  newConsumerInvalidPolicyError,
  newConsumerInvalidSamplingError,
  newConsumerMaxDeliverBackoffError,
  newConsumerMaxPendingAckExcessError,
  newConsumerMaxPendingAckPolicyRequiredError,
  newConsumerMaxRequestBatchNegativeError,
  newConsumerMaxRequestExpiresTooSmallError,
  newConsumerMetadataLengthError,
  newConsumerNameExistError,
  newConsumerOverlappingSubjectFiltersError,
  newConsumerPullRequiresAckError,
  newConsumerPullWithRateLimitError,
  newConsumerPushMaxWaitingError,
  newConsumerReplicasExceedsStreamError,
  newConsumerSmallHeartbeatError,
  newConsumerWithFlowControlNeedsHeartbeatsError,
  newInvalidJSONError,
  newReplicasCountCannotBeNegativeError,
  newStreamInvalidConfigError,
} from './api/errors.generated.ts';
import type { StreamConfig } from './api/types.ts';
import { readMetadata } from './config-metadata.ts';
import { DESCRIPTION_CHARS_MAX, NAME_CHARS_MAX } from './stream-config.ts';

export const DeliverPolicy = ['all', 'last', 'new', 'by_start_sequence', 'by_start_time', 'last_per_subject'] as const;
export type DeliverPolicy = (typeof DeliverPolicy)[number];
export const AckPolicy = ['none', 'all', 'explicit'] as const;
export type AckPolicy = (typeof AckPolicy)[number];
export const ReplayPolicy = ['instant', 'original'] as const;
export type ReplayPolicy = (typeof ReplayPolicy)[number];

/** Default ack_wait for ack explicit/all: 30 s (nats-server JsAckWaitDefault), in ns. */
export const ACK_WAIT_NS_DEFAULT = 30_000_000_000;
/** Default max_ack_pending when acks are required (nats-server JsDefaultMaxAckPending). */
export const MAX_ACK_PENDING_DEFAULT = 1000;
/** Default max_waiting of pull consumers (nats-server JSWaitQueueDefaultMax). */
export const MAX_WAITING_DEFAULT = 512;
/** Default inactive_threshold of ephemerals: 5 s (nats-server JsDeleteWaitTimeDefault), in ns. */
export const INACTIVE_THRESHOLD_NS_DEFAULT = 5_000_000_000;
/** Smallest push idle_heartbeat: 100 ms, in ns. */
export const IDLE_HEARTBEAT_NS_MIN = 100_000_000;
/** Smallest max_expires: 1 ms, in ns. */
export const MAX_EXPIRES_NS_MIN = 1_000_000;
/** Metadata keys plus values, at most (nats-server JSMaxMetadataLen: 128 KiB). */
export const METADATA_BYTES_MAX = 128 * 1024;
/** Most filter_subjects one consumer may have (canopy's limit; every message is matched against each). */
export const FILTER_SUBJECTS_MAX = 1024;
/** Most backoff steps (canopy's limit). */
export const BACKOFF_STEPS_MAX = 1024;

/** The filled-in consumer configuration; absent keys are nats-server's omitempty zero values. */
export type ConsumerConfig = {
  durable_name?: string;
  name: string;
  description?: string;
  deliver_policy: DeliverPolicy;
  opt_start_seq?: number;
  opt_start_time?: string;
  ack_policy: AckPolicy;
  /** ns */
  ack_wait?: number;
  max_deliver: number;
  /** ns per attempt */
  backoff?: number[];
  filter_subject?: string;
  filter_subjects?: string[];
  replay_policy: ReplayPolicy;
  rate_limit_bps?: number;
  sample_freq?: string;
  max_waiting?: number;
  max_ack_pending?: number;
  flow_control?: boolean;
  headers_only?: boolean;
  max_batch?: number;
  /** ns */
  max_expires?: number;
  max_bytes?: number;
  deliver_subject?: string;
  deliver_group?: string;
  /** ns */
  idle_heartbeat?: number;
  /** ns */
  inactive_threshold?: number;
  num_replicas: number;
  mem_storage?: boolean;
  metadata?: Record<string, string>;
};

type Raw = Record<string, unknown>;

/** A type error in the request JSON, worded like Go's encoding/json (nats-server answers 10025). */
function typeError(key: string, expected: string, value: unknown): JsApiError {
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return newInvalidJSONError({ err: `json: cannot unmarshal ${got} into Go struct field ConsumerConfig.config.${key} of type ${expected}` });
}

function readInt(raw: Raw, key: string): number | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value)) return typeError(key, 'int64', value);
  return value;
}

function readString(raw: Raw, key: string): string | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') return typeError(key, 'string', value);
  return value;
}

function readBool(raw: Raw, key: string): boolean | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') return typeError(key, 'bool', value);
  return value;
}

function readEnum<T extends string>(raw: Raw, key: string, allowed: readonly T[], fallback: T): T | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    return newInvalidJSONError({ err: `can not unmarshal ${JSON.stringify(value)}` });
  }
  return value as T;
}

function readStringList(raw: Raw, key: string, itemsMax: number): string[] | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return typeError(key, '[]string', value);
  if (value.length > itemsMax) return newInvalidJSONError({ err: `${key} has more than ${itemsMax} entries` });
  for (const item of value) if (typeof item !== 'string') return typeError(key, '[]string', item);
  return value as string[];
}

function readIntList(raw: Raw, key: string, itemsMax: number): number[] | JsApiError {
  const value = raw[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return typeError(key, '[]time.Duration', value);
  if (value.length > itemsMax) return newInvalidJSONError({ err: `${key} has more than ${itemsMax} entries` });
  for (const item of value) if (typeof item !== 'number' || !Number.isInteger(item)) return typeError(key, '[]time.Duration', item);
  return value as number[];
}


/** Raw request fields, type-checked, before defaults. */
type ParsedFields = {
  durable: string;
  name: string;
  description: string;
  deliverPolicy: DeliverPolicy;
  optStartSeq: number;
  optStartTime: string;
  optStartTimeNs: bigint | undefined;
  ackPolicy: AckPolicy;
  ackWait: number;
  maxDeliver: number;
  backoff: number[];
  filterSubject: string;
  filterSubjects: string[];
  replayPolicy: ReplayPolicy;
  rateLimit: number;
  sampleFreq: string;
  maxWaiting: number;
  maxAckPending: number;
  flowControl: boolean;
  headersOnly: boolean;
  maxBatch: number;
  maxExpires: number;
  maxBytes: number;
  deliverSubject: string;
  deliverGroup: string;
  heartbeat: number;
  inactiveThreshold: number;
  replicas: number;
  memStorage: boolean;
  metadata: Record<string, string> | undefined;
};

/** Type-checks every known field of a request's `config` (JSON decoding, 10025 on a wrong type). */
function parseFields(raw: Raw): ParsedFields | JsApiError {
  const strings = { durable: 'durable_name', name: 'name', description: 'description', filterSubject: 'filter_subject', sampleFreq: 'sample_freq', deliverSubject: 'deliver_subject', deliverGroup: 'deliver_group', optStartTime: 'opt_start_time' } as const;
  const ints = {
    optStartSeq: 'opt_start_seq',
    ackWait: 'ack_wait',
    maxDeliver: 'max_deliver',
    rateLimit: 'rate_limit_bps',
    maxWaiting: 'max_waiting',
    maxAckPending: 'max_ack_pending',
    maxBatch: 'max_batch',
    maxExpires: 'max_expires',
    maxBytes: 'max_bytes',
    heartbeat: 'idle_heartbeat',
    inactiveThreshold: 'inactive_threshold',
    replicas: 'num_replicas',
  } as const;
  const out: Record<string, unknown> = {};
  for (const [field, key] of Object.entries(strings)) {
    const value = readString(raw, key);
    if (value instanceof JsApiError) return value;
    out[field] = value;
  }
  for (const [field, key] of Object.entries(ints)) {
    const value = readInt(raw, key);
    if (value instanceof JsApiError) return value;
    out[field] = value;
  }
  const flowControl = readBool(raw, 'flow_control');
  if (flowControl instanceof JsApiError) return flowControl;
  const headersOnly = readBool(raw, 'headers_only');
  if (headersOnly instanceof JsApiError) return headersOnly;
  const memStorage = readBool(raw, 'mem_storage');
  if (memStorage instanceof JsApiError) return memStorage;
  const deliverPolicy = readEnum(raw, 'deliver_policy', DeliverPolicy, 'all');
  if (deliverPolicy instanceof JsApiError) return deliverPolicy;
  const ackPolicy = readEnum(raw, 'ack_policy', AckPolicy, 'none');
  if (ackPolicy instanceof JsApiError) return ackPolicy;
  const replayPolicy = readEnum(raw, 'replay_policy', ReplayPolicy, 'instant');
  if (replayPolicy instanceof JsApiError) return replayPolicy;
  const backoff = readIntList(raw, 'backoff', BACKOFF_STEPS_MAX);
  if (backoff instanceof JsApiError) return backoff;
  const filterSubjects = readStringList(raw, 'filter_subjects', FILTER_SUBJECTS_MAX);
  if (filterSubjects instanceof JsApiError) return filterSubjects;
  const metadata = readMetadata(raw, typeError);
  if (metadata instanceof JsApiError) return metadata;
  let optStartTimeNs: bigint | undefined;
  const optStartTime = out['optStartTime'] as string;
  if (optStartTime !== '') {
    optStartTimeNs = parseRfc3339Ns(optStartTime);
    if (optStartTimeNs === undefined) return newInvalidJSONError({ err: `parsing time ${JSON.stringify(optStartTime)} as RFC3339` });
  }
  return {
    ...(out as Omit<ParsedFields, 'flowControl' | 'headersOnly' | 'memStorage' | 'deliverPolicy' | 'ackPolicy' | 'replayPolicy' | 'backoff' | 'filterSubjects' | 'metadata' | 'optStartTimeNs'>),
    flowControl,
    headersOnly,
    memStorage,
    deliverPolicy,
    ackPolicy,
    replayPolicy,
    backoff,
    filterSubjects,
    metadata,
    optStartTimeNs,
  };
}

/** nats-server setConsumerConfigDefaults (non-pedantic), plus the ephemeral inactive_threshold stamp. */
function applyDefaults(fields: ParsedFields, stream: StreamConfig): void {
  if (fields.maxDeliver === 0 || fields.maxDeliver < -1) fields.maxDeliver = -1;
  if (fields.maxWaiting < 0) fields.maxWaiting = 0;
  if (fields.maxAckPending < -1) fields.maxAckPending = -1;
  if (fields.maxBatch < 0) fields.maxBatch = 0;
  if (fields.maxExpires < 0) fields.maxExpires = 0;
  if (fields.maxBytes < 0) fields.maxBytes = 0;
  if (fields.heartbeat < 0) fields.heartbeat = 0;
  if (fields.inactiveThreshold < 0) fields.inactiveThreshold = 0;
  if (fields.deliverSubject === '' && fields.maxWaiting === 0) fields.maxWaiting = MAX_WAITING_DEFAULT;
  if (fields.ackWait === 0 && fields.ackPolicy !== 'none') fields.ackWait = ACK_WAIT_NS_DEFAULT;
  if (fields.backoff.length > 0) fields.ackWait = fields.backoff[0]!;
  if (fields.maxAckPending === 0) fields.maxAckPending = stream.consumer_limits.max_ack_pending ?? 0;
  if (fields.inactiveThreshold === 0) fields.inactiveThreshold = stream.consumer_limits.inactive_threshold ?? 0;
  if (fields.maxAckPending === 0 && fields.ackPolicy !== 'none') fields.maxAckPending = MAX_ACK_PENDING_DEFAULT;
  // nats-server stamps the ephemeral default into the config (consumer.go updateInactiveThreshold).
  if (fields.durable === '' && fields.inactiveThreshold <= 0) fields.inactiveThreshold = INACTIVE_THRESHOLD_NS_DEFAULT;
  if (fields.durable !== '' && fields.name === '') fields.name = fields.durable;
}

/** Stream, consumer and durable names (NATS-SPEC.md §2.1). */
export function isValidConsumerName(name: string): boolean {
  return name.length > 0 && name.length <= NAME_CHARS_MAX && !/[\s.*>/\\]/.test(name);
}

/** The consumer's filters as one list ('' filter_subject and no filter_subjects: []). */
export function filtersOf(config: ConsumerConfig): string[] {
  if (config.filter_subjects !== undefined && config.filter_subjects.length > 0) return config.filter_subjects;
  if (config.filter_subject !== undefined && config.filter_subject !== '') return [config.filter_subject];
  return [];
}

/** nats-server checkConsumerCfg, in its order. */
function validate(fields: ParsedFields, stream: StreamConfig): JsApiError | undefined {
  if (fields.name !== '' && !isValidConsumerName(fields.name)) {
    return newStreamInvalidConfigError({ err: "consumer name can not contain '.', '*', '>', '\\', '/'" });
  }
  if (fields.durable !== '' && !isValidConsumerName(fields.durable)) {
    return newStreamInvalidConfigError({ err: "consumer durable name can not contain '.', '*', '>', '\\', '/'" });
  }
  if (fields.replicas > 0 && fields.replicas > stream.num_replicas) return newConsumerReplicasExceedsStreamError();
  if (fields.replicas < 0) return newReplicasCountCannotBeNegativeError();
  for (const step of fields.backoff) if (step < 0) return newConsumerBackOffNegativeError();
  if (fields.ackWait < 0) return newConsumerAckWaitNegativeError();
  if (fields.backoff.length > 0 && fields.maxDeliver !== -1 && fields.backoff.length > fields.maxDeliver) {
    return newConsumerMaxDeliverBackoffError();
  }
  if (fields.description.length > DESCRIPTION_CHARS_MAX) return newConsumerDescriptionTooLongError({ max: DESCRIPTION_CHARS_MAX });
  const refused = fields.deliverSubject !== '' ? validatePush(fields, stream) : validatePull(fields, stream);
  if (refused !== undefined) return refused;
  const limits = stream.consumer_limits;
  if (limits.max_ack_pending !== undefined && limits.max_ack_pending > 0 && fields.maxAckPending > limits.max_ack_pending) {
    return newConsumerMaxPendingAckExcessError({ limit: limits.max_ack_pending });
  }
  if (limits.inactive_threshold !== undefined && limits.inactive_threshold > 0 && fields.inactiveThreshold > limits.inactive_threshold) {
    return newConsumerInactiveThresholdExcessError({ limit: limits.inactive_threshold });
  }
  const filterRefused = validateFilters(fields);
  if (filterRefused !== undefined) return filterRefused;
  const policyRefused = validateStartPolicy(fields);
  if (policyRefused !== undefined) return policyRefused;
  if (fields.sampleFreq !== '') {
    const text = fields.sampleFreq.endsWith('%') ? fields.sampleFreq.slice(0, -1) : fields.sampleFreq;
    if (!/^[+-]?\d+$/.test(text) || Number(text) < 0) {
      return newConsumerInvalidSamplingError({ err: `strconv.Atoi: parsing ${JSON.stringify(text)}: invalid syntax` });
    }
  }
  if (fields.flowControl && fields.heartbeat === 0) return newConsumerWithFlowControlNeedsHeartbeatsError();
  if (fields.durable !== '' && fields.name !== '' && fields.name !== fields.durable) return newConsumerCreateDurableAndNameMismatchError();
  let metadataBytes = 0;
  for (const [key, value] of Object.entries(fields.metadata ?? {})) metadataBytes += key.length + value.length;
  if (metadataBytes > METADATA_BYTES_MAX) return newConsumerMetadataLengthError({ limit: `${METADATA_BYTES_MAX / 1024}KB` });
  return undefined;
}

function validatePush(fields: ParsedFields, stream: StreamConfig): JsApiError | undefined {
  if (!subjectIsLiteral(fields.deliverSubject)) return newConsumerDeliverToWildcardsError();
  if (!isValidSubject(fields.deliverSubject)) return newConsumerInvalidDeliverSubjectError();
  // nats-server deliveryFormsCycle: delivering into the stream's own subjects would loop.
  for (const subject of stream.subjects ?? []) {
    if (subjectMatchesFilter(fields.deliverSubject, subject)) return newConsumerDeliverCycleError();
  }
  if (fields.maxWaiting !== 0) return newConsumerPushMaxWaitingError();
  if (fields.maxAckPending > 0 && fields.ackPolicy === 'none') return newConsumerMaxPendingAckPolicyRequiredError();
  if (fields.heartbeat > 0 && fields.heartbeat < IDLE_HEARTBEAT_NS_MIN) return newConsumerSmallHeartbeatError();
  return undefined;
}

function validatePull(fields: ParsedFields, stream: StreamConfig): JsApiError | undefined {
  if (fields.ackPolicy === 'none' && stream.retention === 'workqueue') return newConsumerPullRequiresAckError();
  if (fields.rateLimit > 0) return newConsumerPullWithRateLimitError();
  if (fields.heartbeat > 0) return newConsumerHBRequiresPushError();
  if (fields.flowControl) return newConsumerFCRequiresPushError();
  if (fields.maxBatch < 0) return newConsumerMaxRequestBatchNegativeError();
  if (fields.maxExpires !== 0 && fields.maxExpires < MAX_EXPIRES_NS_MIN) return newConsumerMaxRequestExpiresTooSmallError();
  return undefined;
}

function validateFilters(fields: ParsedFields): JsApiError | undefined {
  if (fields.filterSubject !== '' && fields.filterSubjects.length > 0) return newConsumerDuplicateFilterSubjectsError();
  if (fields.filterSubject !== '' && !isValidSubject(fields.filterSubject)) return newStreamInvalidConfigError({ err: 'invalid subject' });
  for (const filter of fields.filterSubjects) if (filter === '') return newConsumerEmptyFilterError();
  const filters = fields.filterSubjects.length > 0 ? fields.filterSubjects : fields.filterSubject === '' ? [] : [fields.filterSubject];
  for (let outer = 0; outer < filters.length; outer++) {
    if (!isValidSubject(filters[outer]!)) return newStreamInvalidConfigError({ err: 'invalid subject' });
    for (let inner = 0; inner < filters.length; inner++) {
      if (inner !== outer && isSubjectSubset(filters[outer]!, filters[inner]!)) return newConsumerOverlappingSubjectFiltersError();
    }
  }
  return undefined;
}

function validateStartPolicy(fields: ParsedFields): JsApiError | undefined {
  const badStart = (policy: string, start: string): JsApiError =>
    newConsumerInvalidPolicyError({ err: `consumer delivery policy is deliver ${policy}, but optional start ${start} is also set` });
  const notSet = (policy: string, what: string): JsApiError =>
    newConsumerInvalidPolicyError({ err: `consumer delivery policy is deliver ${policy}, but optional ${what} is not set` });
  const hasTime = fields.optStartTimeNs !== undefined;
  switch (fields.deliverPolicy) {
    case 'all':
    case 'last':
    case 'new':
      if (fields.optStartSeq > 0) return badStart(fields.deliverPolicy, 'sequence');
      if (hasTime) return badStart(fields.deliverPolicy, 'time');
      return undefined;
    case 'last_per_subject':
      if (fields.optStartSeq > 0) return badStart('last per subject', 'sequence');
      if (hasTime) return badStart('last per subject', 'time');
      if (fields.filterSubject === '' && fields.filterSubjects.length === 0) return notSet('last per subject', 'filter subject');
      return undefined;
    case 'by_start_sequence':
      if (fields.optStartSeq === 0) return notSet('by start sequence', 'start sequence');
      if (hasTime) return badStart('by start sequence', 'time');
      return undefined;
    case 'by_start_time':
      if (!hasTime) return notSet('by start time', 'start time');
      if (fields.optStartSeq !== 0) return badStart('by start time', 'start sequence');
      return undefined;
  }
}

/** The config object in nats-server's field order, omitempty fields left out. */
function buildConfig(fields: ParsedFields): ConsumerConfig {
  const config: ConsumerConfig = {
    ...(fields.durable === '' ? {} : { durable_name: fields.durable }),
    name: fields.name,
    ...(fields.description === '' ? {} : { description: fields.description }),
    deliver_policy: fields.deliverPolicy,
    ...(fields.optStartSeq === 0 ? {} : { opt_start_seq: fields.optStartSeq }),
    ...(fields.optStartTimeNs === undefined ? {} : { opt_start_time: formatRfc3339Ns(fields.optStartTimeNs) }),
    ack_policy: fields.ackPolicy,
    ...(fields.ackWait === 0 ? {} : { ack_wait: fields.ackWait }),
    max_deliver: fields.maxDeliver,
    ...(fields.backoff.length === 0 ? {} : { backoff: [...fields.backoff] }),
    ...(fields.filterSubject === '' ? {} : { filter_subject: fields.filterSubject }),
    ...(fields.filterSubjects.length === 0 ? {} : { filter_subjects: [...fields.filterSubjects] }),
    replay_policy: fields.replayPolicy,
    ...(fields.rateLimit === 0 ? {} : { rate_limit_bps: fields.rateLimit }),
    ...(fields.sampleFreq === '' ? {} : { sample_freq: fields.sampleFreq }),
    ...(fields.maxWaiting === 0 ? {} : { max_waiting: fields.maxWaiting }),
    ...(fields.maxAckPending === 0 ? {} : { max_ack_pending: fields.maxAckPending }),
    ...(fields.flowControl ? { flow_control: true } : {}),
    ...(fields.headersOnly ? { headers_only: true } : {}),
    ...(fields.maxBatch === 0 ? {} : { max_batch: fields.maxBatch }),
    ...(fields.maxExpires === 0 ? {} : { max_expires: fields.maxExpires }),
    ...(fields.maxBytes === 0 ? {} : { max_bytes: fields.maxBytes }),
    ...(fields.deliverSubject === '' ? {} : { deliver_subject: fields.deliverSubject }),
    ...(fields.deliverGroup === '' ? {} : { deliver_group: fields.deliverGroup }),
    ...(fields.heartbeat === 0 ? {} : { idle_heartbeat: fields.heartbeat }),
    ...(fields.inactiveThreshold === 0 ? {} : { inactive_threshold: fields.inactiveThreshold }),
    num_replicas: fields.replicas,
    ...(fields.memStorage ? { mem_storage: true } : {}),
    ...(fields.metadata === undefined ? {} : { metadata: fields.metadata }),
  };
  return config;
}

/**
 * Parses a request's `config`, fills in nats-server's defaults and validates it
 * against the stream. The name of a legacy ephemeral (no name, no durable) is
 * the caller's to fill in.
 */
export function normalizeConsumerConfig(input: unknown, stream: StreamConfig): ConsumerConfig | JsApiError {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return newInvalidJSONError({ err: 'json: cannot unmarshal into Go struct field CreateConsumerRequest.config of type server.ConsumerConfig' });
  }
  const fields = parseFields(input as Raw);
  if (fields instanceof JsApiError) return fields;
  applyDefaults(fields, stream);
  const refused = validate(fields, stream);
  if (refused !== undefined) return refused;
  return buildConfig(fields);
}

/** A stored config (restart recovery) or a filled-in config, re-checked. */
export function isDurableConfig(config: ConsumerConfig): boolean {
  return config.durable_name !== undefined && config.durable_name !== '';
}

export function isPushConfig(config: ConsumerConfig): boolean {
  return config.deliver_subject !== undefined && config.deliver_subject !== '';
}

/** Stable comparison of two filled-in configs (action "create" on an existing consumer). */
export function sameConsumerConfig(a: ConsumerConfig, b: ConsumerConfig): boolean {
  return canonicalJson(a) === canonicalJson(b);
}


/**
 * What an update may change (nats-server checkNewConsumerConfig). `hasDeliverInterest`
 * tells whether the current deliver subject still has subscribers.
 */
export function checkConsumerUpdate(current: ConsumerConfig, next: ConsumerConfig, hasDeliverInterest: boolean): JsApiError | undefined {
  if (sameConsumerConfig(current, next)) return undefined;
  const fail = (text: string): JsApiError => newConsumerCreateError({ err: text });
  if (current.deliver_policy !== next.deliver_policy) return fail('deliver policy can not be updated');
  if ((current.mem_storage ?? false) !== (next.mem_storage ?? false)) return fail('storage type can not be updated');
  if ((current.opt_start_seq ?? 0) !== (next.opt_start_seq ?? 0)) return fail('start sequence can not be updated');
  const currentTime = current.opt_start_time === undefined ? undefined : parseRfc3339Ns(current.opt_start_time);
  const nextTime = next.opt_start_time === undefined ? undefined : parseRfc3339Ns(next.opt_start_time);
  if (currentTime !== nextTime) return fail('start time can not be updated');
  if (current.ack_policy !== next.ack_policy) return fail('ack policy can not be updated');
  if (current.replay_policy !== next.replay_policy) return fail('replay policy can not be updated');
  if ((current.idle_heartbeat ?? 0) !== (next.idle_heartbeat ?? 0)) return fail('heart beats can not be updated');
  if ((current.flow_control ?? false) !== (next.flow_control ?? false)) return fail('flow control can not be updated');
  const currentDeliver = current.deliver_subject ?? '';
  const nextDeliver = next.deliver_subject ?? '';
  if (currentDeliver !== nextDeliver) {
    if (currentDeliver === '') return fail('can not update pull consumer to push based');
    if (nextDeliver === '') return fail('can not update push consumer to pull based');
    if (hasDeliverInterest) return newConsumerNameExistError();
  }
  if ((current.max_waiting ?? 0) !== (next.max_waiting ?? 0)) return fail('max waiting can not be updated');
  const backoffSteps = next.backoff?.length ?? 0;
  if (backoffSteps > 0 && next.max_deliver !== -1 && backoffSteps > next.max_deliver) return newConsumerMaxDeliverBackoffError();
  return undefined;
}
