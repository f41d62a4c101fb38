/**
 * The receiving side's status rows (/leafz): what this side has of each peer stream, from the
 * link states on disk and, for the streams its sink loaded, the sink's exact durable view plus
 * what the receiver staged. The hub shows its leaves' upstream streams this way, a leaf the
 * hub's downstream streams.
 */
import type { JetStream } from '../jetstream/jetstream.ts';
import type { GapRecord } from '../link/index.ts';
import { originCursorStateOf, originStreamStateOf, type OriginCursorState, type OriginStreamState } from './jetstream-sink.ts';
import type { ReceiverHost } from './receiver-host.ts';

/** One peer's link states, by origin key. */
export type PeerLinkStates = { readonly cursors: Map<string, OriginCursorState>; readonly incarnations: Map<string, OriginStreamState> };

/** One peer stream (incarnation) as this side has it. */
export type ReceivedStreamStatus = {
  /** 'up' on the hub (a leaf's stream came up), 'down' on a leaf (a hub stream came down). */
  readonly direction: 'up' | 'down';
  readonly stream: string;
  readonly incarnation: string;
  /** Durable cursor: every origin sequence up to it is on this side's disk (stored, a recorded gap, or skipped as another peer's). */
  readonly cursor: number;
  /** Appended, possibly not yet durable (= cursor when nothing is pending or unknown). */
  readonly stagedSeq: number;
  readonly gaps: number;
  readonly gapMsgs: number;
  /** The most recent gap records. */
  readonly recentGaps: readonly GapRecord[];
  /** Clock ms of the last batch stored, undefined when none. */
  readonly lastBatchMs: number | undefined;
  /** This is the incarnation this side stored data for most recently. */
  readonly isCurrent: boolean;
  /** How often this peer stream came with a new incarnation (durable; the README's alert). */
  readonly incarnationChanges: number;
  /** Why this side refuses this stream now (until the peer's next connection), if it does. */
  readonly refusal: string | undefined;
};

/** Every peer's link states on disk (plus what is pending), grouped by peer; `isPeer` filters the names. */
export function linkStatesByPeer(jetstream: JetStream, isPeer: (name: string) => boolean): Map<string, PeerLinkStates> {
  const byPeer = new Map<string, PeerLinkStates>();
  for (const stream of jetstream.streams.keys()) {
    for (const [origin, value] of jetstream.storage.loadLinkStates(stream)) {
      const parts = origin.split('/');
      const peer = parts[0]!;
      // parts[1] is the peer's stream: usually the stream holding the state, or one the role maps into it (SinkRole.targetOf).
      if (!isPeer(peer) || parts[1] === undefined || parts[1] === '' || parts.length > 3) continue;
      let states = byPeer.get(peer);
      if (states === undefined) {
        states = { cursors: new Map(), incarnations: new Map() };
        byPeer.set(peer, states);
      }
      if (parts.length === 3) states.cursors.set(origin, originCursorStateOf(value, origin));
      else states.incarnations.set(origin, originStreamStateOf(value, origin));
    }
  }
  return byPeer;
}

/** The rows of one peer: `disk` from {@link linkStatesByPeer}, `host` when the peer was seen by this process. */
export function receivedStreamRows(options: {
  readonly peer: string;
  readonly direction: 'up' | 'down';
  readonly host: ReceiverHost | undefined;
  readonly disk: PeerLinkStates | undefined;
}): ReceivedStreamStatus[] {
  const { peer, host, disk } = options;
  // The sink's durable view is exact for the streams it loaded; the disk scan also shows what is pending.
  const cursors = new Map(disk?.cursors);
  const incarnations = new Map(disk?.incarnations);
  const views = host?.sink.views();
  if (views !== undefined) {
    for (const stream of views.streams) {
      for (const origin of [...cursors.keys()]) if (origin.startsWith(`${peer}/${stream}/`)) cursors.delete(origin);
      incarnations.delete(`${peer}/${stream}`);
    }
    for (const [origin, state] of views.cursors) cursors.set(origin, state);
    for (const [origin, state] of views.incarnations) incarnations.set(origin, state);
  }
  const staged = new Map<string, number>();
  for (const progress of host?.receiver.progress() ?? []) staged.set(`${peer}/${progress.stream}/${progress.incarnation}`, progress.stagedSeq);
  const rows: ReceivedStreamStatus[] = [];
  for (const [origin, state] of cursors) {
    const [, stream = '', incarnation = ''] = origin.split('/');
    const last = incarnations.get(`${peer}/${stream}`);
    rows.push({
      direction: options.direction,
      stream,
      incarnation,
      cursor: state.cursor,
      stagedSeq: Math.max(state.cursor, staged.get(origin) ?? 0),
      gaps: state.gapCount,
      gapMsgs: state.gapMsgs,
      recentGaps: state.gaps,
      lastBatchMs: state.lastBatchMs === 0 ? undefined : state.lastBatchMs,
      isCurrent: last?.incarnation === incarnation,
      incarnationChanges: last?.incarnationChanges ?? 0,
      refusal: views?.refusals.get(`${stream}/${incarnation}`),
    });
  }
  rows.sort((a, b) => (a.stream === b.stream ? (a.isCurrent ? -1 : b.isCurrent ? 1 : 0) : a.stream < b.stream ? -1 : 1));
  return rows;
}
