/**
 * Stream, account and message endpoints of `$JS.API` (NATS-SPEC.md §2.2): one
 * handler per endpoint, all answering with nats-server's `type` names and errors.
 */
import { isValidSubject, subjectsOverlap } from '../../subjects/subject.ts';
import { nowNs } from '../../util/time.ts';
import type { JetStream } from '../jetstream.ts';
import { parseApiBody } from './body.ts';
import { buildStoredMessageJson, buildStreamInfo } from '../stream-info.ts';
import { checkStreamUpdate, normalizeStreamConfig, sameStreamConfig } from '../stream-config.ts';
import { streamMetaOf, type Stream } from '../stream.ts';
import { StoreError } from '../store.ts';
import {
  JsApiError,
  newBadRequestError,
  newNoMessageFoundError,
  newSequenceNotFoundError,
  newStreamCreateError,
  newStreamGeneralError,
  newStreamMismatchError,
  newStreamMsgDeleteFailedError,
  newStreamNameExistError,
  newStreamNotFoundError,
  newStreamPurgeFailedError,
  newStreamSealedError,
  newStreamSubjectOverlapError,
} from './errors.generated.ts';
import type { StreamConfig } from './types.ts';

/** One API request: tokens after `$JS.API.`, the reply subject, and the body (a copy). */
export type ApiRequest = {
  readonly subject: string;
  readonly tokens: readonly string[];
  readonly reply: string;
  readonly body: Buffer;
};
export type ApiContext = { readonly jetstream: JetStream };
export type ApiHandler = (context: ApiContext, request: ApiRequest) => Promise<void> | void;

/** Page sizes (nats-server): names 1024, lists 256. */
export const NAMES_PAGE_MAX = 1024;
export const LIST_PAGE_MAX = 256;

/** The stream name token of a `STREAM.<op>.<name>` subject. */
function streamNameOf(request: ApiRequest, index = 2): string {
  return request.tokens.slice(index).join('.');
}

/** The request body as an object, or undefined after answering with the parse error. */
export function bodyOrError(context: ApiContext, request: ApiRequest, typeName: string): Record<string, unknown> | undefined {
  const body = parseApiBody(request.body);
  if (body instanceof JsApiError) {
    context.jetstream.respondError(request.reply, typeName, body);
    return undefined;
  }
  return body;
}

/** The named stream, or undefined after answering 10059. */
export function lookupStream(context: ApiContext, request: ApiRequest, typeName: string, name: string): Stream | undefined {
  const stream = context.jetstream.streams.get(name);
  if (stream === undefined) context.jetstream.respondError(request.reply, typeName, newStreamNotFoundError());
  return stream;
}

function infoOf(context: ApiContext, stream: Stream, options: { subjectsFilter?: string; deletedDetails?: boolean; offset?: number } = {}): Record<string, unknown> {
  return buildStreamInfo(stream, { ...options, consumerCount: context.jetstream.consumers?.consumerCount(stream) ?? 0 });
}

/** Another stream whose subjects overlap `config`'s (10065). */
function findOverlap(js: JetStream, config: StreamConfig): Stream | undefined {
  for (const other of js.streams.values()) {
    if (other.name === config.name) continue;
    for (const a of other.config.subjects ?? []) {
      for (const b of config.subjects ?? []) if (subjectsOverlap(a, b)) return other;
    }
  }
  return undefined;
}

async function persistMeta(js: JetStream, stream: Stream): Promise<void> {
  if (stream.config.storage !== 'file') return;
  await js.storage.saveStreamMeta(stream.name, streamMetaOf(stream));
}

/** The body of a CREATE/UPDATE and the stream name of its subject; answers 10056 when the body names another stream. */
function configRequestOf(context: ApiContext, request: ApiRequest, typeName: string): { body: Record<string, unknown>; name: string } | undefined {
  const body = bodyOrError(context, request, typeName);
  if (body === undefined) return undefined;
  const name = streamNameOf(request);
  if (typeof body['name'] === 'string' && body['name'] !== '' && body['name'] !== name) {
    context.jetstream.respondError(request.reply, typeName, newStreamMismatchError());
    return undefined;
  }
  return { body, name };
}

async function handleStreamCreate(context: ApiContext, request: ApiRequest): Promise<void> {
  const typeName = 'stream_create_response';
  const js = context.jetstream;
  const parsed = configRequestOf(context, request, typeName);
  if (parsed === undefined) return;
  const created = await createStream(js, { ...parsed.body, name: parsed.name });
  if (created instanceof JsApiError) js.respondError(request.reply, typeName, created);
  else js.respond(request.reply, typeName, { ...infoOf(context, created.stream), did_create: created.isNew });
}

/**
 * Creates a stream as `$JS.API.STREAM.CREATE` does (checks, persistence, consumers), for the
 * API and for canopy itself (the hub creating a stream on first sync). An existing stream
 * with the same config is returned with `isNew` false; with another config it is 10058.
 */
export async function createStream(js: JetStream, body: Record<string, unknown>): Promise<{ stream: Stream; isNew: boolean } | JsApiError> {
  const config = normalizeStreamConfig(body);
  if (config instanceof JsApiError) return config;
  const refusedByHold = js.retentionHold?.checkConfig(config);
  if (refusedByHold !== undefined) return refusedByHold;
  if (config.sealed) return newStreamCreateError({ err: 'stream configuration for create can not be sealed' });
  const existing = js.streams.get(config.name);
  if (existing !== undefined) {
    return sameStreamConfig(existing.config, config) ? { stream: existing, isNew: false } : newStreamNameExistError();
  }
  if (findOverlap(js, config) !== undefined) return newStreamSubjectOverlapError();
  if (config.mirror !== undefined || (config.sources !== undefined && config.sources.length > 0)) {
    return newStreamCreateError({ err: 'stream mirrors and sources are not supported yet by canopy' });
  }
  const stream = js.openStream(config, nowNs());
  await persistMeta(js, stream);
  await js.consumers?.onStreamStarted(stream);
  js.log.info({ stream: config.name, storage: config.storage, subjects: config.subjects }, 'stream created');
  return { stream, isNew: true };
}

async function handleStreamUpdate(context: ApiContext, request: ApiRequest): Promise<void> {
  const typeName = 'stream_update_response';
  const js = context.jetstream;
  const parsed = configRequestOf(context, request, typeName);
  if (parsed === undefined) return;
  const { body, name } = parsed;
  const stream = lookupStream(context, request, typeName, name);
  if (stream === undefined) return;
  const config = normalizeStreamConfig({ ...body, name });
  if (config instanceof JsApiError) {
    js.respondError(request.reply, typeName, config);
    return;
  }
  const refused = js.retentionHold?.checkConfig(config) ?? checkStreamUpdate(stream.config, config);
  if (refused !== undefined) {
    js.respondError(request.reply, typeName, refused);
    return;
  }
  if (findOverlap(context.jetstream, config) !== undefined) {
    js.respondError(request.reply, typeName, newStreamSubjectOverlapError());
    return;
  }
  stream.update(config);
  js.directGet.sync(stream);
  await persistMeta(context.jetstream, stream);
  js.respond(request.reply, typeName, infoOf(context, stream));
}

function handleStreamInfo(context: ApiContext, request: ApiRequest): void {
  const typeName = 'stream_info_response';
  const body = bodyOrError(context, request, typeName);
  if (body === undefined) return;
  const stream = lookupStream(context, request, typeName, streamNameOf(request));
  if (stream === undefined) return;
  const subjectsFilter = typeof body['subjects_filter'] === 'string' ? body['subjects_filter'] : undefined;
  const offset = typeof body['offset'] === 'number' ? body['offset'] : 0;
  const info = infoOf(context, stream, {
    ...(subjectsFilter === undefined ? {} : { subjectsFilter }),
    deletedDetails: body['deleted_details'] === true,
    offset,
  });
  context.jetstream.respond(request.reply, typeName, info);
}

/** Streams (sorted by name) whose subjects overlap the optional subject filter. */
function listedStreams(context: ApiContext, body: Record<string, unknown>): Stream[] | JsApiError {
  const filter = typeof body['subject'] === 'string' ? body['subject'] : '';
  if (filter !== '' && !isValidSubject(filter)) return newBadRequestError();
  const streams = [...context.jetstream.streams.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (filter === '') return streams;
  return streams.filter((stream) => (stream.config.subjects ?? []).some((subject) => subjectsOverlap(subject, filter)));
}

/** One page of `items` at the request's `offset` (clamped to the total), as nats-server pages names and lists. */
export function pageOf<T>(items: readonly T[], body: Record<string, unknown>, pageMax: number): { page: T[]; offset: number } {
  const requested = typeof body['offset'] === 'number' && Number.isInteger(body['offset']) ? body['offset'] : 0;
  const offset = Math.min(Math.max(requested, 0), items.length);
  return { page: items.slice(offset, offset + pageMax), offset };
}

/** STREAM.NAMES and STREAM.LIST: the same filter and paging, different page sizes and items. */
function respondStreamPage(
  context: ApiContext,
  request: ApiRequest,
  options: { typeName: string; pageMax: number; item: (stream: Stream) => unknown },
): void {
  const body = bodyOrError(context, request, options.typeName);
  if (body === undefined) return;
  const streams = listedStreams(context, body);
  if (streams instanceof JsApiError) {
    context.jetstream.respondError(request.reply, options.typeName, streams);
    return;
  }
  const { page, offset } = pageOf(streams, body, options.pageMax);
  context.jetstream.respond(request.reply, options.typeName, {
    total: streams.length,
    offset,
    limit: options.pageMax,
    streams: page.map(options.item),
  });
}

function handleStreamNames(context: ApiContext, request: ApiRequest): void {
  respondStreamPage(context, request, { typeName: 'stream_names_response', pageMax: NAMES_PAGE_MAX, item: (stream) => stream.name });
}

function handleStreamList(context: ApiContext, request: ApiRequest): void {
  respondStreamPage(context, request, { typeName: 'stream_list_response', pageMax: LIST_PAGE_MAX, item: (stream) => infoOf(context, stream) });
}

async function handleStreamDelete(context: ApiContext, request: ApiRequest): Promise<void> {
  const typeName = 'stream_delete_response';
  const js = context.jetstream;
  const stream = lookupStream(context, request, typeName, streamNameOf(request));
  if (stream === undefined) return;
  stream.stop();
  js.directGet.remove(stream.name);
  js.streams.delete(stream.name);
  await js.consumers?.onStreamDeleted(stream);
  await stream.store.close().catch(() => undefined);
  await js.storage.deleteStream(stream.name);
  js.notifyStreamChanged(stream);
  js.log.info({ stream: stream.name }, 'stream deleted');
  js.respond(request.reply, typeName, { success: true });
}

async function handleStreamPurge(context: ApiContext, request: ApiRequest): Promise<void> {
  const typeName = 'stream_purge_response';
  const js = context.jetstream;
  const body = bodyOrError(context, request, typeName);
  if (body === undefined) return;
  const stream = lookupStream(context, request, typeName, streamNameOf(request));
  if (stream === undefined) return;
  if (stream.config.sealed) return js.respondError(request.reply, typeName, newStreamSealedError());
  if (stream.config.deny_purge) {
    return js.respondError(request.reply, typeName, newStreamPurgeFailedError({ err: 'stream purge not permitted' }));
  }
  // nats-server parity: server/jetstream_api.go jsStreamPurgeRequest unmarshals into
  // JSApiStreamPurgeRequest {seq, keep uint64; filter string}: a field of another type, a
  // negative or fractional number is a JSON error there, answered 10003. Approximation:
  // uint64 values above 2^53 are refused too (not safe integers here).
  const filterField = body['filter'];
  const seqField = body['seq'];
  const keepField = body['keep'];
  if (!isAbsentOrString(filterField) || !isAbsentOrCount(seqField) || !isAbsentOrCount(keepField)) {
    return js.respondError(request.reply, typeName, newBadRequestError());
  }
  const filter = typeof filterField === 'string' ? filterField : '';
  const seq = typeof seqField === 'number' ? seqField : 0;
  const keep = typeof keepField === 'number' ? keepField : 0;
  if ((seq > 0 && keep > 0) || (filter !== '' && !isValidSubject(filter))) {
    return js.respondError(request.reply, typeName, newBadRequestError());
  }
  const purged = stream.store.purge({
    ...(filter === '' ? {} : { subject: filter }),
    ...(seq > 0 ? { seq } : {}),
    ...(keep > 0 ? { keep } : {}),
  });
  js.onRemoved(stream);
  await stream.store.flushed();
  js.respond(request.reply, typeName, { success: true, purged });
}

/** A JSON field that is absent (or null: Go's json then leaves the zero value) or a string. */
function isAbsentOrString(value: unknown): boolean {
  return value === undefined || value === null || typeof value === 'string';
}

/** A JSON field that is absent (or null) or fits a Go uint64 here: a non-negative safe integer. */
function isAbsentOrCount(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0);
}

/** `{seq}` | `{last_by_subj}` | `{next_by_subj, seq}`, with nats-server's conflicts. */
export function parseGetRequest(body: Record<string, unknown>): { seq?: number; last_by_subj?: string; next_by_subj?: string } | undefined {
  const seq = body['seq'];
  const last = body['last_by_subj'];
  const next = body['next_by_subj'];
  if (seq !== undefined && (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0)) return undefined;
  if (last !== undefined && (typeof last !== 'string' || last === '')) return undefined;
  if (next !== undefined && (typeof next !== 'string' || next === '')) return undefined;
  if (body['batch'] !== undefined || body['max_bytes'] !== undefined || body['multi_last'] !== undefined) return undefined;
  if (last !== undefined && (seq !== undefined || next !== undefined)) return undefined;
  if (last === undefined && next === undefined && (seq === undefined || seq === 0)) return undefined;
  return {
    ...(typeof seq === 'number' ? { seq } : {}),
    ...(typeof last === 'string' ? { last_by_subj: last } : {}),
    ...(typeof next === 'string' ? { next_by_subj: next } : {}),
  };
}

function handleMsgGet(context: ApiContext, request: ApiRequest): void {
  const typeName = 'stream_msg_get_response';
  const js = context.jetstream;
  const body = bodyOrError(context, request, typeName);
  if (body === undefined) return;
  const stream = lookupStream(context, request, typeName, streamNameOf(request, 3));
  if (stream === undefined) return;
  const get = parseGetRequest(body);
  if (get === undefined) return js.respondError(request.reply, typeName, newBadRequestError());
  const message = stream.getMessage(get);
  if (message instanceof StoreError) return js.respondError(request.reply, typeName, newStreamGeneralError({ err: message.message }));
  if (message === undefined) return js.respondError(request.reply, typeName, newNoMessageFoundError());
  js.respond(request.reply, typeName, { message: buildStoredMessageJson(message) });
}

async function handleMsgDelete(context: ApiContext, request: ApiRequest): Promise<void> {
  const typeName = 'stream_msg_delete_response';
  const js = context.jetstream;
  const body = bodyOrError(context, request, typeName);
  if (body === undefined) return;
  const stream = lookupStream(context, request, typeName, streamNameOf(request, 3));
  if (stream === undefined) return;
  if (stream.config.sealed) return js.respondError(request.reply, typeName, newStreamSealedError());
  if (stream.config.deny_delete) {
    return js.respondError(request.reply, typeName, newStreamMsgDeleteFailedError({ err: 'message delete not permitted' }));
  }
  const seq = body['seq'];
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq <= 0) return js.respondError(request.reply, typeName, newBadRequestError());
  const isRemoved = stream.store.remove(seq, { erase: body['no_erase'] !== true });
  if (!isRemoved) return js.respondError(request.reply, typeName, newSequenceNotFoundError({ seq }));
  js.onRemoved(stream);
  await stream.store.flushed();
  js.respond(request.reply, typeName, { success: true });
}

function handleAccountInfo(context: ApiContext, request: ApiRequest): void {
  const usage = context.jetstream.usage();
  context.jetstream.respond(request.reply, 'account_info_response', {
    memory: usage.memory,
    storage: usage.storage,
    reserved_memory: 0,
    reserved_storage: 0,
    streams: usage.streams,
    consumers: usage.consumers,
    limits: {
      max_memory: -1,
      max_storage: -1,
      max_streams: -1,
      max_consumers: -1,
      max_ack_pending: -1,
      memory_max_stream_bytes: -1,
      storage_max_stream_bytes: -1,
      max_bytes_required: false,
    },
    api: { total: context.jetstream.apiTotal, errors: context.jetstream.apiErrors },
  });
}

/** Handlers by `<GROUP>.<OP>` (STREAM.MSG.<OP> for message endpoints; INFO alone). */
export const STREAM_API_HANDLERS: ReadonlyMap<string, ApiHandler> = new Map<string, ApiHandler>([
  ['INFO', handleAccountInfo],
  ['STREAM.CREATE', handleStreamCreate],
  ['STREAM.UPDATE', handleStreamUpdate],
  ['STREAM.INFO', handleStreamInfo],
  ['STREAM.NAMES', handleStreamNames],
  ['STREAM.LIST', handleStreamList],
  ['STREAM.DELETE', handleStreamDelete],
  ['STREAM.PURGE', handleStreamPurge],
  ['STREAM.MSG.GET', handleMsgGet],
  ['STREAM.MSG.DELETE', handleMsgDelete],
]);
