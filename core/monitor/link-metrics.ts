/**
 * Link series on /metrics (issue 4 "Visibility"), from the same document /leafz serves
 * (leafz.ts): on a leaf its link and per-stream backlog, on a hub every leaf's per-stream
 * cursor and gaps; downstream (hub streams synced down) the leaf's cursor and the hub's
 * acknowledged cursor and backlog per leaf. Names are canopy's own (`canopy_link_*` on a leaf,
 * `canopy_hub_*` on a hub).
 */

export type LinkSample = { readonly labels: Record<string, string>; readonly value: number };

type Row = Record<string, unknown>;
type LinkGauge = {
  readonly name: string;
  readonly help: string;
  readonly labels: readonly string[];
  /** One value per stream row of a leaf (`leaf`, `stream`) or of a hub's leaf (`leaf`, `stream`); undefined skips it. */
  readonly stream?: (row: Row, nowMs: number) => number | undefined;
  /** Which rows `stream` reads: `streams` (upstream, the default) or `downstream` (hub streams synced down). */
  readonly rows?: 'streams' | 'downstream';
  /** One value per leaf link (`leaf`). */
  readonly link?: (link: Row) => number | undefined;
  /** One value for a hub's leaf listener (no labels; /leafz `listener`). */
  readonly listener?: (listener: Row) => number | undefined;
  readonly role: 'leaf' | 'hub';
  /** A count since start, exposed as a Prometheus counter (default: a gauge). */
  readonly isCounter?: boolean;
};

const num = (row: Row, key: string): number | undefined => (typeof row[key] === 'number' ? row[key] : undefined);
const secondsSince = (row: Row, key: string, nowMs: number): number | undefined => {
  const at = num(row, key);
  return at === undefined ? undefined : Math.max(0, (nowMs - at) / 1000);
};
const LEAF_STREAM = ['leaf', 'stream'] as const;

export const LINK_GAUGES: readonly LinkGauge[] = [
  { role: 'leaf', name: 'canopy_link_up', help: 'Whether the leaf\'s link to the hub is up (1) or not (0)', labels: ['leaf'], link: (l) => (l['state'] === 'up' ? 1 : 0) },
  { role: 'leaf', name: 'canopy_link_reconnects', help: 'Connections to the hub after the first', labels: ['leaf'], link: (l) => num(l, 'reconnects') },
  { role: 'leaf', name: 'canopy_link_stream_backlog_messages', help: 'Messages of a leaf stream the hub has not acknowledged', labels: LEAF_STREAM, stream: (s) => num(s, 'backlogMsgs') },
  { role: 'leaf', name: 'canopy_link_stream_backlog_bytes', help: 'Bytes of a leaf stream the hub has not acknowledged', labels: LEAF_STREAM, stream: (s) => num(s, 'backlogBytes') },
  { role: 'leaf', name: 'canopy_link_stream_acked_seq', help: 'The hub\'s durable cursor for a leaf stream, as the leaf last heard it', labels: LEAF_STREAM, stream: (s) => num(s, 'ackedSeq') },
  { role: 'leaf', name: 'canopy_link_stream_last_seq', help: 'Last sequence of a leaf stream', labels: LEAF_STREAM, stream: (s) => num(s, 'lastSeq') },
  { role: 'leaf', name: 'canopy_link_stream_stalled', help: 'A backlog that has not moved for the stall time (1) or not (0)', labels: LEAF_STREAM, stream: (s) => (s['stalled'] === true ? 1 : 0) },
  { role: 'leaf', name: 'canopy_link_stream_floor_seq', help: 'Retention floor of a leaf stream kept until the hub has it (the hub\'s durable cursor as the leaf persisted it)', labels: LEAF_STREAM, stream: (s) => num(s, 'floorSeq') },
  { role: 'leaf', name: 'canopy_link_stream_held_messages', help: 'Messages of a leaf stream that limits or retention would have removed, kept until the hub has them (estimate)', labels: LEAF_STREAM, stream: (s) => num(s, 'heldMsgs') },
  { role: 'leaf', name: 'canopy_link_stream_held_bytes', help: 'Bytes of the held messages of a leaf stream (estimate)', labels: LEAF_STREAM, stream: (s) => num(s, 'heldBytes') },
  { role: 'leaf', name: 'canopy_link_stream_refused_publishes', help: 'Publishes to a leaf stream refused since start because its limits would have removed messages the hub does not have', labels: LEAF_STREAM, stream: (s) => num(s, 'refusedPublishes') },
  { role: 'leaf', name: 'canopy_link_stream_last_ack_seconds', help: 'Seconds since the hub last acknowledged a leaf stream', labels: LEAF_STREAM, stream: (s, now) => secondsSince(s, 'lastAckMs', now) },
  { role: 'hub', name: 'canopy_hub_leaf_connected', help: 'Whether a leaf is connected (1) or not (0)', labels: ['leaf'], link: (l) => (l['connected'] === true ? 1 : 0) },
  { role: 'hub', name: 'canopy_hub_stream_cursor', help: 'Durable cursor of a leaf stream on the hub (origin sequence)', labels: LEAF_STREAM, stream: (s) => num(s, 'cursor') },
  { role: 'hub', name: 'canopy_hub_stream_gaps', help: 'Gaps recorded for a leaf stream (data the leaf deleted before the hub had it)', labels: LEAF_STREAM, stream: (s) => num(s, 'gaps') },
  { role: 'hub', name: 'canopy_hub_stream_gap_messages', help: 'Messages inside recorded gaps of a leaf stream', labels: LEAF_STREAM, stream: (s) => num(s, 'gapMsgs') },
  { role: 'hub', name: 'canopy_hub_stream_incarnation_changes', help: 'Times a leaf stream was re-created (new incarnation)', labels: LEAF_STREAM, stream: (s) => num(s, 'incarnationChanges') },
  { role: 'hub', name: 'canopy_hub_stream_last_batch_seconds', help: 'Seconds since the last batch of a leaf stream', labels: LEAF_STREAM, stream: (s, now) => secondsSince(s, 'lastBatchMs', now) },
  { role: 'hub', name: 'canopy_hub_leaf_tls', help: 'Whether a leaf\'s current or last link is wss:// (1) or ws:// (0)', labels: ['leaf'], link: (l) => (typeof l['tls'] === 'boolean' ? Number(l['tls']) : undefined) },
  {
    role: 'hub',
    name: 'canopy_hub_link_tls_failures_total',
    help: 'TLS handshakes on the leaf listener that failed (client certificate missing or not accepted, the hub\'s refused, plain ws on the TLS port, timeouts)',
    labels: [],
    listener: (l) => num(l, 'tlsFailures'),
    isCounter: true,
  },
  { role: 'leaf', name: 'canopy_link_downstream_cursor', help: 'Durable cursor of a hub stream synced down to the leaf (hub sequence)', labels: LEAF_STREAM, rows: 'downstream', stream: (s) => num(s, 'cursor') },
  { role: 'leaf', name: 'canopy_link_downstream_gaps', help: 'Gaps recorded for a hub stream synced down (data the hub deleted before the leaf had it)', labels: LEAF_STREAM, rows: 'downstream', stream: (s) => num(s, 'gaps') },
  { role: 'hub', name: 'canopy_hub_downstream_acked_seq', help: 'The leaf\'s durable cursor for a hub stream synced down, as the hub last heard it', labels: LEAF_STREAM, rows: 'downstream', stream: (s) => num(s, 'ackedSeq') },
  { role: 'hub', name: 'canopy_hub_downstream_backlog_messages', help: 'Messages of a hub stream addressed to a leaf that it has not acknowledged', labels: LEAF_STREAM, rows: 'downstream', stream: (s) => num(s, 'backlogMsgs') },
];

/** Gauge name → samples, from a /leafz document (without a link layer: no samples). */
export function linkSamples(leafz: Record<string, unknown> | undefined, nowMs: number): Map<string, LinkSample[]> {
  const samples = new Map<string, LinkSample[]>(LINK_GAUGES.map((gauge) => [gauge.name, []]));
  const links: { leaf: string; link: Row }[] = [];
  const listener = leafz?.['role'] === 'hub' && typeof leafz['listener'] === 'object' && leafz['listener'] !== null ? (leafz['listener'] as Row) : undefined;
  if (leafz?.['role'] === 'leaf' && typeof leafz['link'] === 'object' && leafz['link'] !== null) {
    links.push({ leaf: String(leafz['leaf'] ?? ''), link: leafz['link'] as Row });
  } else if (leafz?.['role'] === 'hub' && Array.isArray(leafz['leafs'])) {
    for (const leaf of leafz['leafs'] as Row[]) links.push({ leaf: String(leaf['leaf'] ?? ''), link: leaf });
  }
  const role = leafz?.['role'];
  for (const gauge of LINK_GAUGES) {
    if (gauge.role !== role) continue;
    const out = samples.get(gauge.name)!;
    const listenerValue = listener === undefined ? undefined : gauge.listener?.(listener);
    if (listenerValue !== undefined) out.push({ labels: {}, value: listenerValue });
    for (const { leaf, link } of links) {
      const linkValue = gauge.link?.(link);
      if (linkValue !== undefined) out.push({ labels: { leaf }, value: linkValue });
      const readStream = gauge.stream;
      if (readStream === undefined) continue;
      const rows = link[gauge.rows ?? 'streams'];
      for (const stream of Array.isArray(rows) ? (rows as Row[]) : []) {
        const value = readStream(stream, nowMs);
        if (value !== undefined) out.push({ labels: { leaf, stream: String(stream['stream'] ?? '') }, value });
      }
    }
  }
  return samples;
}
