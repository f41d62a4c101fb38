/**
 * GET /connz: open and recently closed client connections, sortable and paged.
 *
 * nats-server parity: server/monitor.go `Connz`/`ConnInfo`/`HandleConnz` and
 * server/monitor_sort_opts.go. Query: `sort`, `auth`, `subs` (`1` or
 * `detail`), `offset`, `limit` (default 1024), `cid`, `state`
 * (`open`|`closed`|`all`), `user`, `acc`, `filter_subject`, `mqtt_client`.
 * Only `cid` ascending is the natural order; every other sort is descending,
 * except `uptime` and `reason` (ascending, as in nats-server).
 */
import type { ClientConnection } from '../server/connection.ts';
import type { Subscription } from '../server/subscription.ts';
import { isValidSubject, subjectsOverlap } from '../subjects/subject.ts';
import { countRequest, GLOBAL_ACCOUNT, MonitorPath, type MonitorContext } from './context.ts';
import { formatGoDuration, formatGoTime, formatUptime, normalizeIp } from './format.ts';
import {
  ConnectionState,
  decodeBool,
  decodeInt,
  decodeState,
  decodeSubs,
  decodeUint64,
  MonitorRequestError,
  queryString,
  type SubscriptionsListing,
} from './query.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';

/** Page size when `limit` is absent or not positive (nats-server `DefaultConnListSize`). */
export const CONNZ_LIMIT_DEFAULT = 1024;

/** Accepted `sort` values (nats-server `SortOpt`); case-sensitive, as there. */
export const ConnzSort = {
  cid: 'cid',
  start: 'start',
  subs: 'subs',
  pending: 'pending',
  msgsTo: 'msgs_to',
  msgsFrom: 'msgs_from',
  bytesTo: 'bytes_to',
  bytesFrom: 'bytes_from',
  last: 'last',
  idle: 'idle',
  uptime: 'uptime',
  stop: 'stop',
  reason: 'reason',
  rtt: 'rtt',
} as const;
export type ConnzSort = (typeof ConnzSort)[keyof typeof ConnzSort];

const SORT_VALUES: ReadonlySet<string> = new Set(Object.values(ConnzSort));

/** One subscription in `subscriptions_list_detail` / `/subsz?subs=1` (nats-server `SubDetail`). */
export type SubDetail = {
  /** Present in /subsz and for closed connections (nats-server `newSubDetail`), absent for open ones. */
  account?: string;
  subject: string;
  /** Queue group; omitted when none. */
  qgroup?: string;
  sid: string;
  /** Messages delivered to this subscription. */
  msgs: number;
  /** Auto-unsubscribe limit (`UNSUB <sid> <max>`); omitted when none. */
  max?: number;
  cid: number;
};

/** One connection (nats-server `ConnInfo`); optional fields are omitted when empty, as Go's `omitempty` does. */
export type ConnInfo = {
  cid: number;
  /** Always `Client` for client connections. */
  kind: string;
  /** `nats` (TCP) or `websocket`. */
  type: string;
  ip: string;
  port: number;
  /** RFC 3339, UTC. */
  start: string;
  /** RFC 3339, UTC. */
  last_activity: string;
  /** RFC 3339, UTC; closed connections only. */
  stop?: string;
  /** Why it closed (`Client Closed`, `Slow Consumer (Pending Bytes)`, …); closed connections only. */
  reason?: string;
  /** Go duration string (`0s` until a PING/PONG was timed). */
  rtt: string;
  uptime: string;
  idle: string;
  pending_bytes: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  /** Subscription count. */
  subscriptions: number;
  name?: string;
  lang?: string;
  version?: string;
  /** TLS connections only: `1.3`, `1.2`. */
  tls_version?: string;
  /** TLS connections only: the IANA name (`TLS_AES_256_GCM_SHA384`). */
  tls_cipher_suite?: string;
  /**
   * With `auth=true`, who the connection authenticated as (nats-server getRawAuthUser): the
   * user name (also when a certificate named it), the nkey, or `[REDACTED]` for a token.
   */
  authorized_user?: string;
  /** With `auth=1`: the connection's account, omitted for `$G` (nats-server parity). */
  account?: string;
  subscriptions_list?: string[];
  subscriptions_list_detail?: SubDetail[];
};

/** The /connz document (nats-server `Connz`). */
export type Connz = {
  server_id: string;
  now: string;
  /** Connections in this page. */
  num_connections: number;
  /** Connections in the selected state(s), before paging. */
  total: number;
  offset: number;
  limit: number;
  connections: ConnInfo[];
};

/** Parsed /connz query. */
export type ConnzOptions = {
  readonly sort: ConnzSort;
  readonly isAuth: boolean;
  readonly subscriptions: SubscriptionsListing;
  readonly offset: number;
  readonly limit: number;
  /** 0 = any. */
  readonly cid: number;
  readonly state: ConnectionState;
  readonly user: string;
  readonly account: string;
  readonly filterSubject: string;
  readonly mqttClient: string;
};

/** The /connz query as decoded, before the cross-checks: the options with the sort still as text. */
type ConnzQuery = Omit<ConnzOptions, 'sort'> & { readonly sortText: string };

/**
 * Decodes the parameters in nats-server's order (`auth`, `subs`, `offset`,
 * `limit`, `cid`, `state`), so the first error reported is the one
 * nats-server would report.
 */
export function decodeConnzQuery(query: URLSearchParams): ConnzQuery {
  return {
    sortText: queryString(query, 'sort'),
    isAuth: decodeBool(query, 'auth'),
    subscriptions: decodeSubs(query),
    offset: decodeInt(query, 'offset'),
    limit: decodeInt(query, 'limit'),
    cid: decodeUint64(query, 'cid'),
    state: decodeState(query),
    user: queryString(query, 'user'),
    account: queryString(query, 'acc'),
    filterSubject: queryString(query, 'filter_subject'),
    mqttClient: queryString(query, 'mqtt_client'),
  };
}

/** Checks the decoded query and applies the defaults (nats-server `Connz` preamble). */
export function resolveConnzOptions(query: ConnzQuery): ConnzOptions {
  const { sortText, state, account, filterSubject, cid, limit } = query;
  if (sortText !== '' && !SORT_VALUES.has(sortText)) {
    throw new MonitorRequestError(`invalid sorting option: ${sortText}`);
  }
  const sort = sortText === '' ? ConnzSort.cid : (sortText as ConnzSort);
  if (sort === ConnzSort.stop && state !== ConnectionState.closed) {
    throw new MonitorRequestError('sort by stop only valid on closed connections');
  }
  if (sort === ConnzSort.reason && state !== ConnectionState.closed) {
    throw new MonitorRequestError('sort by reason only valid on closed connections');
  }
  const hasFilter = filterSubject !== '' && filterSubject !== '>';
  if (hasFilter && account === '') {
    throw new MonitorRequestError('filter by subject only valid with account filtering');
  }
  if (hasFilter && !isValidSubject(filterSubject)) {
    // canopy: nats-server does not validate it (and then matches nothing); say so instead.
    throw new MonitorRequestError(`invalid filter subject: ${filterSubject}`);
  }
  return {
    sort,
    isAuth: query.isAuth,
    subscriptions: query.subscriptions,
    offset: Math.max(0, query.offset),
    // nats-server parity: a cid filter forces limit 1.
    limit: cid > 0 ? 1 : limit <= 0 ? CONNZ_LIMIT_DEFAULT : limit,
    cid,
    state,
    user: query.user,
    account,
    filterSubject: hasFilter ? filterSubject : '',
    mqttClient: query.mqttClient,
  };
}

/** A connection with the times the sort keys need (closed ones are frozen at close). */
type Row = {
  readonly connection: ClientConnection;
  readonly isClosed: boolean;
  readonly stopMs: number;
};

/** Builds the /connz document. */
export function buildConnz(context: MonitorContext, options: ConnzOptions, nowMs: number = Date.now()): Connz {
  const server = context.server;
  const connz: Connz = {
    server_id: server.serverId,
    now: formatGoTime(nowMs),
    num_connections: 0,
    total: 0,
    offset: options.offset,
    limit: options.limit,
    connections: [],
  };
  const wantsOpen = options.state !== ConnectionState.closed;
  const wantsClosed = options.state !== ConnectionState.open;
  const inAccount = (connection: ClientConnection): boolean => connection.account.name === options.account;
  if (options.account === '') {
    if (wantsOpen) connz.total += server.connections.size;
    if (wantsClosed) connz.total += server.closedConnectionsCount;
  } else {
    if (wantsOpen) for (const connection of server.connections.values()) if (inAccount(connection)) connz.total++;
    if (wantsClosed) connz.total += server.closedConnections.filter(inAccount).length;
  }

  const rows = selectRows(context, options);
  rows.sort(rowComparator(options.sort, nowMs));
  const page = rows.slice(Math.min(options.offset, rows.length), Math.min(options.offset + options.limit, rows.length));
  for (const row of page) connz.connections.push(connInfo(row, options, nowMs));
  connz.num_connections = connz.connections.length;
  return connz;
}

function selectRows(context: MonitorContext, options: ConnzOptions): Row[] {
  const { server } = context;
  const rows: Row[] = [];
  // No MQTT in canopy: an MQTT client-id filter matches nothing (nats-server compares to '').
  if (options.mqttClient !== '') return rows;
  const wantsOpen = options.state !== ConnectionState.closed;
  const wantsClosed = options.state !== ConnectionState.open;
  // nats-server parity: `user` compares the authorized user's name, `acc` the account's.
  const isSelected = (connection: ClientConnection): boolean =>
    (options.user === '' || connection.authorizedUser?.name === options.user) && (options.account === '' || connection.account.name === options.account);
  if (options.cid > 0) {
    // canopy: with state=all nats-server only searches closed connections (monitor.go Connz); we search both.
    const open = wantsOpen ? server.connections.get(options.cid) : undefined;
    if (open !== undefined && isSelected(open)) rows.push({ connection: open, isClosed: false, stopMs: 0 });
    if (wantsClosed && open === undefined) {
      const closed = server.closedConnections.find((connection) => connection.cid === options.cid);
      if (closed !== undefined && isSelected(closed)) rows.push({ connection: closed, isClosed: true, stopMs: closed.closedMs });
    }
    return rows;
  }
  if (wantsOpen) {
    for (const connection of server.connections.values()) {
      if (!isSelected(connection)) continue;
      if (options.filterSubject !== '' && !hasOverlappingSubscription(connection, options.filterSubject)) continue;
      rows.push({ connection, isClosed: false, stopMs: 0 });
    }
  }
  if (wantsClosed) {
    for (const connection of server.closedConnections) {
      if (isSelected(connection)) rows.push({ connection, isClosed: true, stopMs: connection.closedMs });
    }
  }
  return rows;
}

function hasOverlappingSubscription(connection: ClientConnection, filter: string): boolean {
  for (const subscription of connection.subscriptions.values()) {
    if (subjectsOverlap(filter, subscription.subject)) return true;
  }
  return false;
}

type Comparator = (a: Row, b: Row) => number;

/** nats-server parity: monitor_sort_opts.go; ties keep cid order (Array.prototype.sort is stable). */
function rowComparator(sort: ConnzSort, nowMs: number): Comparator {
  const descending = (key: (row: Row) => number): Comparator => (a, b) => key(b) - key(a);
  const byCid: Comparator = (a, b) => a.connection.cid - b.connection.cid;
  switch (sort) {
    case ConnzSort.cid:
    case ConnzSort.start:
      return byCid;
    case ConnzSort.subs:
      return descending((row) => row.connection.subscriptions.size);
    case ConnzSort.pending:
      return descending((row) => pendingBytes(row));
    case ConnzSort.msgsTo:
      return descending((row) => row.connection.outMsgs);
    case ConnzSort.msgsFrom:
      return descending((row) => row.connection.inMsgs);
    case ConnzSort.bytesTo:
      return descending((row) => row.connection.outBytes);
    case ConnzSort.bytesFrom:
      return descending((row) => row.connection.inBytes);
    case ConnzSort.last:
      return descending((row) => row.connection.lastActivityMs);
    case ConnzSort.idle:
      return descending((row) => nowMs - row.connection.lastActivityMs);
    case ConnzSort.uptime:
      return (a, b) => uptimeMs(a, nowMs) - uptimeMs(b, nowMs);
    case ConnzSort.stop:
      return descending((row) => row.stopMs);
    case ConnzSort.reason:
      return (a, b) => compareStrings(a.connection.closedReason ?? '', b.connection.closedReason ?? '');
    case ConnzSort.rtt:
      return descending((row) => row.connection.rttMs);
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function uptimeMs(row: Row, nowMs: number): number {
  return (row.isClosed ? row.stopMs : nowMs) - row.connection.startMs;
}

function pendingBytes(row: Row): number {
  return row.isClosed ? 0 : row.connection.pendingBytes();
}

function connInfo(row: Row, options: ConnzOptions, nowMs: number): ConnInfo {
  const connection = row.connection;
  // nats-server parity: saveClosedClient freezes uptime and idle at the close time.
  const endMs = row.isClosed ? row.stopMs : nowMs;
  const info: ConnInfo = {
    cid: connection.cid,
    kind: 'Client',
    type: connection.kind === 'websocket' ? 'websocket' : 'nats',
    ip: normalizeIp(connection.remoteAddress),
    port: connection.remotePort,
    start: formatGoTime(connection.startMs),
    last_activity: formatGoTime(connection.lastActivityMs),
    rtt: formatGoDuration(connection.rttMs * 1_000_000),
    uptime: formatUptime(endMs - connection.startMs),
    idle: formatUptime(endMs - connection.lastActivityMs),
    pending_bytes: pendingBytes(row),
    in_msgs: connection.inMsgs,
    out_msgs: connection.outMsgs,
    in_bytes: connection.inBytes,
    out_bytes: connection.outBytes,
    subscriptions: connection.subscriptions.size,
  };
  if (row.isClosed) {
    // Keep Go's field order: stop and reason come right after last_activity.
    const { cid, kind, type, ip, port, start, last_activity: lastActivity, ...rest } = info;
    return finishConnInfo(
      {
        cid,
        kind,
        type,
        ip,
        port,
        start,
        last_activity: lastActivity,
        stop: formatGoTime(row.stopMs),
        reason: connection.closedReason ?? '',
        ...rest,
      },
      connection,
      options,
      true,
    );
  }
  return finishConnInfo(info, connection, options, false);
}

function finishConnInfo(info: ConnInfo, connection: ClientConnection, options: ConnzOptions, isClosed: boolean): ConnInfo {
  const listing = options.subscriptions;
  if (connection.name !== '') info.name = connection.name;
  if (connection.lang !== '') info.lang = connection.lang;
  if (connection.version !== '') info.version = connection.version;
  if (connection.tlsPeer !== undefined) {
    // nats-server parity: monitor.go writes the version as "1.3" and the suite by its IANA name.
    info.tls_version = connection.tlsPeer.version.replace(/^TLSv/, '');
    info.tls_cipher_suite = connection.tlsPeer.cipherSuite;
  }
  if (options.isAuth) {
    // nats-server parity: monitor.go fills both with auth=1, the account only when it is not the global one.
    if (connection.authorizedUser !== undefined) info.authorized_user = connection.authorizedUser.name;
    if (connection.account.name !== GLOBAL_ACCOUNT) info.account = connection.account.name;
  }
  if (connection.subscriptions.size === 0 || listing === 'none') return info;
  if (listing === 'subjects') {
    info.subscriptions_list = [...connection.subscriptions.values()].map((subscription) => subscription.subject);
  } else {
    // nats-server parity: open connections use newClientSubDetail (no account), closed ones newSubDetail.
    info.subscriptions_list_detail = [...connection.subscriptions.values()].map((subscription) =>
      subDetail(subscription, { account: isClosed ? connection.account.name : undefined }),
    );
  }
  return info;
}

/** nats-server `newSubDetail` / `newClientSubDetail`; optional fields follow Go's `omitempty`. */
export function subDetail(subscription: Subscription, options: { account: string | undefined }): SubDetail {
  return {
    ...(options.account !== undefined ? { account: options.account } : {}),
    subject: subscription.subject,
    ...(subscription.queue !== '' ? { qgroup: subscription.queue } : {}),
    sid: subscription.sid,
    msgs: subscription.deliveredMsgs,
    ...(subscription.maxMsgs > 0 ? { max: subscription.maxMsgs } : {}),
    cid: subscription.connection.cid,
  };
}

/**
 * GET /connz. nats-server parity: HandleConnz counts the request once the
 * parameters decode, before `Connz` checks `sort` and the filters.
 */
export function handleConnz(context: MonitorContext, query: URLSearchParams): MonitorResponse {
  const decoded = decodeConnzQuery(query);
  countRequest(context, MonitorPath.connz);
  return jsonResponse(buildConnz(context, resolveConnzOptions(decoded)));
}
