/**
 * GET /healthz: liveness for load balancers and Kubernetes probes.
 *
 * nats-server parity: server/monitor.go `HandleHealthz`/`healthz` and
 * `HealthStatus` (written with `json.Marshal`, one line: `{"status":"ok"}`).
 * Query: `js-enabled` (deprecated), `js-enabled-only`, `js-server-only`,
 * `js-meta-only`, `details` (booleans), `account`, `stream`, `consumer`.
 * JetStream is not enabled in canopy yet, so, as nats-server does without
 * `jetstream` in its config, every JetStream check passes once the server
 * accepts connections.
 */
import { countRequest, MonitorPath, type MonitorContext } from './context.ts';
import { decodeBool, queryString } from './query.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';

/** nats-server `HealthzError.type` values canopy can produce. */
export const HealthzErrorType = { connection: 'CONNECTION', badRequest: 'BAD_REQUEST' } as const;
export type HealthzErrorType = (typeof HealthzErrorType)[keyof typeof HealthzErrorType];

/** nats-server `HealthStatus` (its `status_code` is dropped over HTTP: it is the response status). */
export type HealthStatus = {
  /** `ok`, or `error`/`unavailable`. */
  status: string;
  /** One error (without `details`). */
  error?: string;
  /** All errors (with `details=true`). */
  errors?: { type: HealthzErrorType; error: string }[];
};

type HealthzOptions = {
  readonly isDetailed: boolean;
  readonly account: string;
  readonly stream: string;
  readonly consumer: string;
};

function parseHealthzQuery(query: URLSearchParams): HealthzOptions {
  decodeBool(query, 'js-enabled');
  decodeBool(query, 'js-enabled-only');
  decodeBool(query, 'js-server-only');
  decodeBool(query, 'js-meta-only');
  return {
    isDetailed: decodeBool(query, 'details'),
    account: queryString(query, 'account'),
    stream: queryString(query, 'stream'),
    consumer: queryString(query, 'consumer'),
  };
}

/** The health verdict and the HTTP status that goes with it. */
export function checkHealth(context: MonitorContext, options: HealthzOptions): { status: number; body: HealthStatus } {
  const fail = (status: number, type: HealthzErrorType, error: string): { status: number; body: HealthStatus } =>
    options.isDetailed
      ? { status, body: { status: 'error', errors: [{ type, error }] } }
      : { status, body: { status: 'error', error } };
  if (options.account === '' && options.stream !== '') {
    return fail(400, HealthzErrorType.badRequest, '"account" must not be empty when checking stream health');
  }
  if (options.stream === '' && options.consumer !== '') {
    return fail(400, HealthzErrorType.badRequest, '"stream" must not be empty when checking consumer health');
  }
  if (!isAcceptingConnections(context)) {
    return fail(500, HealthzErrorType.connection, 'server is not accepting client connections');
  }
  return { status: 200, body: { status: 'ok' } };
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
