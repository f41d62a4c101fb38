/**
 * GET /accountz: the accounts of this server (nats-server `Accountz`, server/monitor.go).
 * Without a query: `accounts`, every account name (`$G` first). With `acc=<name>`:
 * `account_detail` with the counts nats-server's `AccountInfo` reports that canopy has
 * (connections, subscriptions, JetStream on or off); imports, exports and JWT fields are
 * left out. canopy has no system account, so `system_account` is omitted.
 */
import { countRequest, MonitorPath, type MonitorContext } from './context.ts';
import { formatGoTime } from './format.ts';
import { MonitorRequestError, queryString } from './query.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';

export function handleAccountz(context: MonitorContext, query: URLSearchParams): MonitorResponse {
  const name = queryString(query, 'acc');
  countRequest(context, MonitorPath.accountz);
  const server = context.server;
  const document: Record<string, unknown> = { server_id: server.serverId, now: formatGoTime(Date.now()) };
  if (name === '') {
    document['accounts'] = [...server.accounts.values()].map((account) => account.name);
    return jsonResponse(document);
  }
  const account = server.accounts.get(name);
  // nats-server parity: monitor.go accountInfo's text for an unknown account.
  if (account === undefined) throw new MonitorRequestError(`Account ${name} does not exist`);
  let clients = 0;
  for (const connection of server.connections.values()) if (connection.account === account) clients++;
  document['account_detail'] = {
    account_name: account.name,
    is_system: false,
    expired: false,
    complete: true,
    jetstream_enabled: account === server.accounts.global ? server.options.isJetStreamEnabled : account.config.isJetStreamEnabled && server.options.isJetStreamEnabled,
    leafnode_connections: 0,
    client_connections: clients,
    subscriptions: account.sublist.stats().count,
  };
  return jsonResponse(document);
}
