/**
 * The monitoring HTTP listener (nats-server's `http_port`, default 8222):
 * routes, response writing and request counting. One file per endpoint
 * builds the documents; this file never touches server internals.
 *
 * nats-server parity: server/monitor.go `ResponseHandler`/`handleResponse`
 * (JSON, `Access-Control-Allow-Origin: *`, JSONP with `?callback=`) and
 * server/server.go `startMonitoring` (paths). Deliberate differences: bad
 * query parameters get a JSON body `{"error": "<nats-server's text>"}` with
 * the same 400 status (nats-server writes the text alone), unknown paths get
 * a JSON 404, and only GET and HEAD are served.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { JetStream } from '../jetstream/jetstream.ts';
import type { Server } from '../server/server.ts';
import type { TlsMaterial } from '../server/tls-material.ts';
import type { Logger } from '../util/logger.ts';
import { countRequest, MonitorPath, type MonitorContext } from './context.ts';
import { handleAccountz } from './accountz.ts';
import { handleConnz } from './connz.ts';
import { handleHealthz } from './healthz.ts';
import { handleJsz } from './jsz.ts';
import { handleLeafz, type LeafzProvider } from './leafz.ts';
import type { MetricsExporter } from './metrics.ts';
import { ProcessUsage } from './process-usage.ts';
import { MonitorRequestError } from './query.ts';
import { encodeJson, jsonResponse, type MonitorResponse } from './response.ts';
import { handleSubsz } from './subsz.ts';
import { handleVarz } from './varz.ts';

/** A running monitor. */
export type Monitor = {
  /** The bound port (useful when started with port 0). */
  readonly port: number;
  /** Registers what /leafz reports (the leaf's or hub's link layer). */
  setLeafz(provider: LeafzProvider): void;
  /** HTTPS only: new handshakes use this certificate (a config reload renewed the client port's). */
  setTls(tls: Pick<TlsMaterial, 'cert' | 'key'>): void;
  /** Stops listening and drops open HTTP connections. */
  close(): Promise<void>;
};

type Handler = (context: MonitorContext, query: URLSearchParams) => MonitorResponse | Promise<MonitorResponse>;

/** A JSONP callback must be a plain (dotted) identifier, so `?callback=` cannot inject script. */
const JSONP_CALLBACK_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;

/**
 * Starts the monitoring listener for `server` (and its `jetstream`, when on)
 * on `host:port` (port 0 picks a free port). Rejects when the port cannot be bound.
 */
export async function startMonitor(options: {
  server: Server;
  /** Read by /jsz, /varz `jetstream`, /healthz and /metrics; absent = JetStream off. */
  jetstream?: JetStream | undefined;
  /** Every account's JetStream (`$G`'s included), for /jsz; absent = `$G`'s only. */
  accountJetStreams?: ReadonlyMap<string, JetStream> | undefined;
  host: string;
  port: number;
  log: Logger;
  /** Serve HTTPS with this certificate (nats-server `https_port`: the client port's); no client certificate is asked for. */
  tls?: Pick<TlsMaterial, 'cert' | 'key'> | undefined;
  /** `monitor_token`: every request but a plain /healthz needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
}): Promise<Monitor> {
  const { server, host, log } = options;
  const isAuthorized = bearerTokenCheck(options.token);
  let routes: ReadonlyMap<string, Handler> | undefined;
  let context: MonitorContext | undefined;
  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    // Requests are only accepted once listening, after `context` and `routes` are set below.
    if (context === undefined || routes === undefined) {
      writeResponse(request, response, jsonResponse({ error: 'monitor starting' }, { status: 503 }));
      return;
    }
    if (!isAuthorized(request)) {
      writeResponse(request, response, jsonResponse({ error: 'monitoring requires "Authorization: Bearer <monitor_token>"' }, { status: 401 }));
      return;
    }
    void serveRequest({ context, routes, log, request, response });
  };
  const tls = options.tls;
  const httpServer: HttpServer = tls === undefined ? createServer(onRequest) : createHttpsServer({ cert: tls.cert, key: tls.key }, onRequest);
  if (tls !== undefined) {
    httpServer.on('tlsClientError', (err: Error) => log.debug({ err }, 'monitoring TLS handshake failed'));
  }
  await listen(httpServer, options.port, host);
  const port = (httpServer.address() as AddressInfo).port;
  context = {
    server,
    jetstream: options.jetstream,
    accountJetStreams: options.accountJetStreams ?? new Map(),
    httpHost: host,
    httpPort: port,
    isHttps: tls !== undefined,
    httpRequestCounts: new Map(),
    processUsage: new ProcessUsage(),
    leafz: { provider: undefined },
  };
  routes = createRoutes(lazyMetricsExporter(context));
  log.info({ host, port, https: tls !== undefined, token: options.token !== undefined }, 'monitoring listening');
  const leafz = context.leafz;
  return {
    port,
    setLeafz: (provider) => {
      leafz.provider = provider;
    },
    setTls: (material) => {
      if (tls !== undefined) (httpServer as HttpsServer).setSecureContext({ cert: material.cert, key: material.key });
    },
    close: () => closeHttpServer(httpServer),
  };
}

/**
 * The monitoring token check (core/monitor/README.md "Token"): with a token, a request passes
 * when it carries `Authorization: Bearer <token>`, or when it is a plain `/healthz` (no query:
 * load balancers and systemd probes carry no token, and that answer says only ok or not;
 * `/healthz?stream=…` would tell which streams exist, so it needs the token). Without a token,
 * everything passes. Both sides are hashed first, so the comparison takes the same time
 * whatever the length and content of a guess.
 */
function bearerTokenCheck(token: string | undefined): (request: IncomingMessage) => boolean {
  if (token === undefined) return () => true;
  const expected = createHash('sha256').update(token).digest();
  return (request) => {
    if (request.url === MonitorPath.healthz) return true;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) return false;
    return timingSafeEqual(createHash('sha256').update(match[1] ?? '').digest(), expected);
  };
}

/**
 * prom-client (and the exporter's registry) is loaded on the first /metrics scrape:
 * a gateway that nobody scrapes does not pay its memory. Process metrics such as
 * the event-loop lag histogram start measuring from that first scrape.
 */
function lazyMetricsExporter(context: MonitorContext): () => Promise<MetricsExporter> {
  let exporter: Promise<MetricsExporter> | undefined;
  return () => {
    exporter ??= import('./metrics.ts').then((module) => new module.MetricsExporter(context));
    return exporter;
  };
}

function createRoutes(metrics: () => Promise<MetricsExporter>): ReadonlyMap<string, Handler> {
  return new Map<string, Handler>([
    [MonitorPath.root, handleRoot],
    [MonitorPath.varz, handleVarz],
    [MonitorPath.connz, handleConnz],
    [MonitorPath.accountz, handleAccountz],
    [MonitorPath.subsz, handleSubsz],
    [MonitorPath.subscriptionsz, handleSubsz],
    [MonitorPath.healthz, handleHealthz],
    [MonitorPath.jsz, handleJsz],
    [MonitorPath.leafz, handleLeafz],
    [MonitorPath.metrics, (context) => handleMetrics(context, metrics)],
  ]);
}

async function serveRequest(options: {
  context: MonitorContext;
  routes: ReadonlyMap<string, Handler>;
  log: Logger;
  request: IncomingMessage;
  response: ServerResponse;
}): Promise<void> {
  const { context, routes, log, request, response } = options;
  const target = request.url ?? '/';
  const queryStart = target.indexOf('?');
  const path = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = new URLSearchParams(queryStart === -1 ? '' : target.slice(queryStart + 1));
  const handler = routes.get(path);
  let result: MonitorResponse;
  if (handler === undefined) {
    result = jsonResponse({ error: `no monitoring endpoint at ${path}` }, { status: 404 });
  } else if (request.method !== 'GET' && request.method !== 'HEAD') {
    result = jsonResponse({ error: `method ${request.method ?? ''} not allowed` }, { status: 405 });
  } else {
    try {
      result = await handler(context, query);
    } catch (err) {
      if (!(err instanceof MonitorRequestError)) {
        log.error({ err, path }, 'monitoring request failed');
        result = jsonResponse({ error: 'internal error' }, { status: 500 });
      } else {
        result = jsonResponse({ error: err.message }, { status: err.status });
      }
    }
  }
  writeResponse(request, response, result, query.get('callback') ?? '');
}

function writeResponse(
  request: IncomingMessage,
  response: ServerResponse,
  result: MonitorResponse,
  callback: string = '',
): void {
  let contentType: string;
  let body: string;
  if (result.kind === 'text') {
    contentType = result.contentType;
    body = result.text;
  } else {
    const json = encodeJson(result.body, result.isCompact === true);
    if (callback !== '' && JSONP_CALLBACK_PATTERN.test(callback)) {
      contentType = 'application/javascript';
      body = `${callback}(${json})`;
    } else {
      contentType = 'application/json';
      body = json;
    }
  }
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'access-control-allow-origin': '*',
  };
  if (result.status === 405) headers['allow'] = 'GET, HEAD';
  response.writeHead(result.status, headers);
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** GET /: links to the endpoints, like nats-server's HandleRoot page. */
function handleRoot(context: MonitorContext): MonitorResponse {
  countRequest(context, MonitorPath.root);
  const links = [
    ['General', MonitorPath.varz],
    ['JetStream', MonitorPath.jsz],
    ['Links', MonitorPath.leafz],
    ['Connections', MonitorPath.connz],
    ['Accounts', MonitorPath.accountz],
    ['Subscriptions', MonitorPath.subsz],
    ['Health Probe', MonitorPath.healthz],
    ['Prometheus Metrics', MonitorPath.metrics],
  ]
    .map(([title, path]) => `    <a href=".${path ?? ''}">${title ?? ''}</a><br/>`)
    .join('\n');
  const text = `<html lang="en">\n  <body>\n    canopy monitoring (${context.server.serverName})<br/><br/>\n${links}\n  </body>\n</html>\n`;
  return { kind: 'text', status: 200, contentType: 'text/html; charset=utf-8', text };
}

async function handleMetrics(context: MonitorContext, loadMetrics: () => Promise<MetricsExporter>): Promise<MonitorResponse> {
  countRequest(context, MonitorPath.metrics);
  const metrics = await loadMetrics();
  const text = await metrics.render();
  return { kind: 'text', status: 200, contentType: metrics.contentType, text };
}

function listen(httpServer: HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
}

function closeHttpServer(httpServer: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if (!httpServer.listening) {
      resolve();
      return;
    }
    httpServer.close(() => resolve());
    // Keep-alive connections (curl, fetch, Prometheus) would hold close() open until they time out.
    httpServer.closeAllConnections();
  });
}
