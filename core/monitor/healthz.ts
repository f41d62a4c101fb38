/**
 * GET /healthz: liveness for load balancers and Kubernetes probes.
 *
 * nats-server parity (2.10): server/monitor.go `HandleHealthz`/`healthz`,
 * `HealthStatus` and `HealthzError` (written with `json.Marshal`, one line:
 * `{"status":"ok"}`; `status_code` is dropped over HTTP, it is the response
 * status). Query: `js-enabled` (deprecated), `js-enabled-only`,
 * `js-server-only`, `js-meta-only`, `details` (booleans), `account`, `stream`,
 * `consumer`.
 *
 * Checks, in nats-server's order: parameter consistency (400), the client
 * listener (500), then, unless `js-server-only` and when JetStream is on, that
 * JetStream runs and (unless `js-enabled-only`) the single-server recovery
 * check: every stream stored on disk is loaded (503 otherwise), and the
 * `account`/`stream`/`consumer` named exist (404 otherwise). `js-meta-only`
 * only matters in a cluster.
 */
import type { JetStream } from '../jetstream/jetstream.ts';
import { countRequest, MonitorPath, type MonitorContext } from './context.ts';
import { accountJetStreams, findConsumer } from './jsz.ts';
import { decodeBool, queryString } from './query.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';

/** nats-server `HealthZErrorType` values, as written in `errors[].type`. */
export const HealthzErrorType = {
  connection: 'CONNECTION',
  badRequest: 'BAD_REQUEST',
  jetstream: 'JETSTREAM',
  account: 'ACCOUNT',
  stream: 'STREAM',
  consumer: 'CONSUMER',
} as const;
export type HealthzErrorType = (typeof HealthzErrorType)[keyof typeof HealthzErrorType];

/** nats-server `HealthzError`; field order as Go writes it. */
export type HealthzError = {
  type: HealthzErrorType;
  account?: string;
  stream?: string;
  consumer?: string;
  error: string;
};

/** nats-server `HealthStatus` (its `status_code` is dropped over HTTP: it is the response status). */
export type HealthStatus = {
  /** `ok`, or `error`/`unavailable`. */
  status: string;
  /** One error (without `details`). */
  error?: string;
  /** All errors (with `details=true`). */
  errors?: HealthzError[];
};

export type HealthzOptions = {
  readonly isDetailed: boolean;
  /** `js-enabled-only` (or the deprecated `js-enabled`): stop once JetStream is known to run. */
  readonly isJsEnabledOnly: boolean;
  /** `js-server-only`: skip every JetStream check. */
  readonly isJsServerOnly: boolean;
  readonly account: string;
  readonly stream: string;
  readonly consumer: string;
};

/** The default check (what `/healthz` without parameters and /metrics ask). */
export const HEALTHZ_OPTIONS_DEFAULT: HealthzOptions = {
  isDetailed: false,
  isJsEnabledOnly: false,
  isJsServerOnly: false,
  account: '',
  stream: '',
  consumer: '',
};

/** nats-server's NewJSNotEnabledError().Error(): ApiError text is `<description> (<err_code>)`. */
const JETSTREAM_NOT_ENABLED = 'JetStream not enabled (10076)';
const UNAVAILABLE = 'unavailable';

function parseHealthzQuery(query: URLSearchParams): HealthzOptions {
  const isJsEnabled = decodeBool(query, 'js-enabled');
  const isJsEnabledOnly = decodeBool(query, 'js-enabled-only');
  const isJsServerOnly = decodeBool(query, 'js-server-only');
  decodeBool(query, 'js-meta-only');
  return {
    isDetailed: decodeBool(query, 'details'),
    isJsEnabledOnly: isJsEnabledOnly || isJsEnabled,
    isJsServerOnly,
    account: queryString(query, 'account'),
    stream: queryString(query, 'stream'),
    consumer: queryString(query, 'consumer'),
  };
}

type Verdict = { status: number; body: HealthStatus };

/** The health verdict and the HTTP status that goes with it. */
export function checkHealth(context: MonitorContext, options: HealthzOptions): Verdict {
  const fail = (status: number, type: HealthzErrorType, error: string, text: string = 'error'): Verdict =>
    options.isDetailed
      ? { status, body: { status: 'error', errors: [{ type, error }] } }
      : { status, body: { status: text, error } };
  if (options.account === '' && options.stream !== '') {
    return fail(400, HealthzErrorType.badRequest, '"account" must not be empty when checking stream health');
  }
  if (options.stream === '' && options.consumer !== '') {
    return fail(400, HealthzErrorType.badRequest, '"stream" must not be empty when checking consumer health');
  }
  if (!isAcceptingConnections(context)) {
    return fail(500, HealthzErrorType.connection, 'server is not accepting client connections');
  }
  if (options.isJsServerOnly) return ok();
  // JetStream off in the configuration: nothing more to check.
  if (!context.server.options.isJetStreamEnabled) return ok();
  const jetstream = context.jetstream;
  // Configured but not running. (canopy's broker does not start when JetStream fails to,
  // so this is a monitor started without the JetStream its server was configured with.)
  if (jetstream === undefined) return fail(503, HealthzErrorType.jetstream, JETSTREAM_NOT_ENABLED, UNAVAILABLE);
  if (options.isJsEnabledOnly) return ok();
  return checkRecovery(accountJetStreams(context), options);
}

function ok(): Verdict {
  return { status: 200, body: { status: 'ok' } };
}

/**
 * nats-server's single-server check walks `<store_dir>/<account>/streams/` and
 * looks every stream directory up among the loaded streams. canopy's store has
 * no directories; its equivalent is the stream metadata it persisted: every
 * file stream stored must be loaded. Memory streams have nothing on disk, so
 * (as in nats-server) they are not part of the check. An account (`$G`, or one
 * with `jetstream: enabled`) is "on disk" once it has a stored stream.
 */
function checkRecovery(entries: readonly [string, JetStream][], options: HealthzOptions): Verdict {
  const errors: HealthzError[] = [];
  let isAccountFound = false;
  let isStreamFound = false;
  let isConsumerFound = false;
  const accountDirs = entries.map(([account, jetstream]) => ({ account, jetstream, stored: storedFileStreams(jetstream) })).filter((dir) => dir.stored.length > 0);
  for (const { account, jetstream, stored } of accountDirs) {
    if (options.account !== '') {
      if (account !== options.account) continue;
      isAccountFound = true;
    }
    for (const name of stored) {
      if (options.stream !== '') {
        if (name !== options.stream) continue;
        isStreamFound = true;
      }
      if (!jetstream.streams.has(name)) {
        const error = `JetStream stream '${account} > ${name}' could not be recovered`;
        if (!options.isDetailed) return { status: 503, body: { status: UNAVAILABLE, error } };
        errors.push({ type: HealthzErrorType.stream, account, stream: name, error });
        continue;
      }
      if (isStreamFound) {
        if (options.consumer !== '') isConsumerFound = findConsumer(jetstream, name, options.consumer) !== undefined;
        break;
      }
    }
    if (isAccountFound) break;
  }
  const notFound = (error: HealthzError): Verdict =>
    options.isDetailed
      ? { status: 404, body: { status: 'error', errors: [error] } }
      : { status: 404, body: { status: UNAVAILABLE, error: error.error } };
  const { account, stream, consumer } = options;
  if (account !== '' && !isAccountFound) {
    return notFound({ type: HealthzErrorType.account, account, error: `JetStream account ${goQuote(account)} not found` });
  }
  if (stream !== '' && !isStreamFound) {
    const error = `JetStream stream ${goQuote(stream)} not found on account ${goQuote(account)}`;
    return notFound({ type: HealthzErrorType.stream, account, stream, error });
  }
  if (consumer !== '' && !isConsumerFound) {
    const error = `JetStream consumer ${goQuote(consumer)} not found for stream ${goQuote(stream)} on account ${goQuote(account)}`;
    return notFound({ type: HealthzErrorType.consumer, account, stream, consumer, error });
  }
  if (errors.length > 0) return { status: 503, body: { status: 'error', errors } };
  return ok();
}

/** Names of the file streams in the store, in byte order (os.ReadDir sorts by name). */
function storedFileStreams(jetstream: JetStream): string[] {
  const names: string[] = [];
  for (const [name, meta] of jetstream.storage.loadStreamMetas()) {
    const config = meta['config'];
    const storage = config !== null && typeof config === 'object' ? (config as Record<string, unknown>)['storage'] : undefined;
    if (storage !== 'memory') names.push(name);
  }
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Go `%q` for the names healthz quotes (close enough for error text). */
function goQuote(value: string): string {
  return JSON.stringify(value);
}

function isAcceptingConnections(context: MonitorContext): boolean {
  try {
    return context.server.addresses.port > 0;
  } catch {
    // `addresses` throws before the server has started listening: that is the answer, not an error.
    return false;
  }
}

/** GET /healthz. nats-server parity: HandleHealthz counts the request before decoding the parameters. */
export function handleHealthz(context: MonitorContext, query: URLSearchParams): MonitorResponse {
  countRequest(context, MonitorPath.healthz);
  const { status, body } = checkHealth(context, parseHealthzQuery(query));
  return jsonResponse(body, { status, isCompact: true });
}
