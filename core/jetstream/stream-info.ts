/** StreamInfo and StoredMsg JSON (NATS-SPEC.md §2.4, §2.8). */
import { formatRfc3339Ns } from '../util/time.ts';
import type { Stream } from './stream.ts';
import type { StoredMessage } from './store.ts';

/** At most this many subjects in one STREAM.INFO response with subjects_filter (nats-server: 100,000). */
export const STREAM_INFO_SUBJECTS_MAX = 100_000;

export type StreamInfoOptions = {
  readonly subjectsFilter?: string;
  readonly deletedDetails?: boolean;
  readonly offset?: number;
  readonly consumerCount: number;
};

export type StreamInfoJson = Record<string, unknown>;

export function buildStreamInfo(stream: Stream, options: StreamInfoOptions): StreamInfoJson {
  const store = stream.store;
  const state = store.state();
  const stateJson: Record<string, unknown> = {
    messages: state.messages,
    bytes: state.bytes,
    first_seq: state.firstSeq,
    first_ts: formatRfc3339Ns(state.firstTimestampNs),
    last_seq: state.lastSeq,
    last_ts: formatRfc3339Ns(state.lastTimestampNs),
  };
  if (state.numSubjects > 0) stateJson['num_subjects'] = state.numSubjects;
  let total = 0;
  let offset = 0;
  let limit = 0;
  if (options.subjectsFilter !== undefined && options.subjectsFilter !== '') {
    const counts = [...store.subjectCounts(options.subjectsFilter)].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    total = counts.length;
    offset = Math.min(Math.max(options.offset ?? 0, 0), total);
    limit = STREAM_INFO_SUBJECTS_MAX;
    const page = counts.slice(offset, offset + limit);
    if (page.length > 0) stateJson['subjects'] = Object.fromEntries(page);
  }
  if (state.numDeleted > 0) stateJson['num_deleted'] = state.numDeleted;
  if (options.deletedDetails === true && state.numDeleted > 0) stateJson['deleted'] = store.deletedSeqs();
  stateJson['consumer_count'] = options.consumerCount;
  return {
    total,
    offset,
    limit,
    config: stream.config,
    created: formatRfc3339Ns(stream.createdNs),
    state: stateJson,
    ts: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n),
  };
}

/** `message` of a STREAM.MSG.GET response: hdrs/data base64, omitted when empty. */
export function buildStoredMessageJson(message: StoredMessage): Record<string, unknown> {
  const json: Record<string, unknown> = { subject: message.subject, seq: message.seq };
  if (message.headers !== undefined && message.headers.length > 0) json['hdrs'] = message.headers.toString('base64');
  if (message.data.length > 0) json['data'] = message.data.toString('base64');
  json['time'] = formatRfc3339Ns(message.timestampNs);
  return json;
}
