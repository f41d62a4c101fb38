/**
 * GET /leafz: the leaf↔hub links of this process (issue 4 "Visibility"). nats-server's /leafz
 * lists leafnode connections; canopy's links are its own protocol, so the document is
 * canopy's: `server_id`, `now`, and what the link layer reports (leaf: its link to the hub
 * with per-stream backlog, ack cursor and stall flags; hub: every leaf with per-stream cursors
 * and gaps). The link layer lives in leaf/ and hub/, which core may not import: it registers a
 * provider (Monitor.setLeafz). Without one (a plain `canopy server`): `{ "links": "off" }`.
 */
import { countRequest, MonitorPath, type MonitorContext } from './context.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';

/** What the link layer reports: a JSON-ready object (its `role` says which side). */
export type LeafzProvider = () => Record<string, unknown>;

export function handleLeafz(context: MonitorContext): MonitorResponse {
  countRequest(context, MonitorPath.leafz);
  const provider = context.leafz.provider;
  const body = provider === undefined ? { links: 'off' } : provider();
  return jsonResponse({ server_id: context.server.serverId, now: new Date().toISOString(), ...body });
}
