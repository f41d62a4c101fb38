/**
 * GET /subsz (alias /subscriptionsz): sublist counters, optionally the
 * subscriptions themselves.
 *
 * nats-server parity: server/monitor.go `Subsz`/`HandleSubsz` and
 * server/sublist.go `SublistStats`. Two nats-server behaviours are kept on
 * purpose because tools parse them:
 * - when no subscription is listed (no `subs=1`, or an empty page), the body
 *   is only the eight `SublistStats` counters: no `server_id`, `now`,
 *   `total`, `offset` or `limit`;
 * - with a list, `total` is the number of subscriptions in the page, not the
 *   number that matched.
 * Query: `subs` (bool), `offset`, `limit` (default 1024), `test` (a literal
 * subject: only subscriptions a publish to it would reach), `acc`.
 */
import { isValidLiteralSubject, subjectMatchesFilter } from '../subjects/subject.ts';
import type { Subscription } from '../server/subscription.ts';
import type { Sublist } from '../subjects/sublist.ts';
import { countRequest, GLOBAL_ACCOUNT, MonitorPath, type MonitorContext } from './context.ts';
import { subDetail, type SubDetail } from './connz.ts';
import { formatGoTime } from './format.ts';
import { decodeBool, decodeInt, MonitorRequestError, queryString } from './query.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';

/** Page size when `limit` is absent or not positive (nats-server `DefaultSubListSize`). */
export const SUBSZ_LIMIT_DEFAULT = 1024;

/** nats-server `SublistStats`. */
export type SublistStatsJson = {
  num_subscriptions: number;
  num_cache: number;
  num_inserts: number;
  num_removes: number;
  num_matches: number;
  /** Cache hits / matches, 0 before the first match. */
  cache_hit_rate: number;
  /** Largest fan-out (plain subscriptions + queue groups) among cached results. */
  max_fanout: number;
  /** Mean fan-out among cached results. */
  avg_fanout: number;
};

/** The /subsz document when subscriptions are listed (nats-server `Subsz`). */
export type Subsz = { server_id: string; now: string } & SublistStatsJson & {
    /** Subscriptions in this page (nats-server parity; see the file comment). */
    total: number;
    offset: number;
    limit: number;
    subscriptions_list: SubDetail[];
  };

export type SubszOptions = {
  readonly isListing: boolean;
  readonly offset: number;
  readonly limit: number;
  /** '' = no filter. */
  readonly test: string;
  /** '' = every account. */
  readonly account: string;
};

/** Decodes and checks the query in nats-server's order. */
export function parseSubszQuery(query: URLSearchParams): SubszOptions {
  const isListing = decodeBool(query, 'subs');
  const offset = decodeInt(query, 'offset');
  const limit = decodeInt(query, 'limit');
  const test = queryString(query, 'test');
  if (test !== '' && !isValidLiteralSubject(test)) {
    throw new MonitorRequestError(`invalid test subject, must be valid publish subject: ${test}`);
  }
  return {
    isListing,
    offset: Math.max(0, offset),
    limit: limit <= 0 ? SUBSZ_LIMIT_DEFAULT : limit,
    test,
    account: queryString(query, 'acc'),
  };
}

/** The sublist counters under nats-server's JSON names (of `$G`'s sublist unless another is given). */
export function sublistStatsJson(context: MonitorContext, sublist: Sublist<Subscription> = context.server.sublist): SublistStatsJson {
  const stats = sublist.stats();
  return {
    num_subscriptions: stats.count,
    num_cache: stats.cacheCount,
    num_inserts: stats.inserts,
    num_removes: stats.removes,
    num_matches: stats.matches,
    cache_hit_rate: stats.cacheHitRate,
    max_fanout: stats.maxFanout,
    avg_fanout: stats.avgFanout,
  };
}

/** Builds the /subsz document: the counters alone, or {@link Subsz} when a page of subscriptions is listed. */
export function buildSubsz(
  context: MonitorContext,
  options: SubszOptions,
  nowMs: number = Date.now(),
): SublistStatsJson | Subsz {
  // canopy: each account has its own sublist; without `acc` the global account's is reported.
  const account = context.server.accounts.get(options.account === '' ? GLOBAL_ACCOUNT : options.account);
  if (account === undefined) return emptyStats();
  const stats = sublistStatsJson(context, account.sublist);
  if (!options.isListing) return stats;
  const matching = listSubscriptions(account.sublist, options.test);
  const start = Math.min(options.offset, matching.length);
  const end = Math.min(options.offset + options.limit, matching.length);
  const page = matching.slice(start, end).map((subscription) => subDetail(subscription, { account: account.name }));
  if (page.length === 0) return stats;
  return {
    server_id: context.server.serverId,
    now: formatGoTime(nowMs),
    ...stats,
    total: page.length,
    offset: options.offset,
    limit: options.limit,
    subscriptions_list: page,
  };
}

/**
 * Every subscription in the sublist a publish to `test` would reach (all of
 * them when `test` is ''), ordered by cid, then sid, so pages are stable
 * (nats-server walks its trie and gives no order).
 */
function listSubscriptions(sublist: Sublist<Subscription>, test: string): Subscription[] {
  const all = sublist.all();
  const matching = test === '' ? all : all.filter((subscription) => subjectMatchesFilter(test, subscription.subject));
  return matching.sort((a, b) => a.connection.cid - b.connection.cid || compareSids(a.sid, b.sid));
}

/** Numeric sids (what clients send) compare as numbers, others as strings. */
function compareSids(a: string, b: string): number {
  if (a.length !== b.length && /^\d+$/.test(a) && /^\d+$/.test(b)) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

function emptyStats(): SublistStatsJson {
  return {
    num_subscriptions: 0,
    num_cache: 0,
    num_inserts: 0,
    num_removes: 0,
    num_matches: 0,
    cache_hit_rate: 0,
    max_fanout: 0,
    avg_fanout: 0,
  };
}

/** GET /subsz. nats-server parity: HandleSubsz counts the request before decoding the parameters. */
export function handleSubsz(context: MonitorContext, query: URLSearchParams): MonitorResponse {
  countRequest(context, MonitorPath.subsz);
  return jsonResponse(buildSubsz(context, parseSubszQuery(query)));
}
