/**
 * Consumer endpoints of `$JS.API` (NATS-SPEC.md §2.2): CREATE in its four subject
 * forms, INFO, NAMES, LIST, DELETE and MSG.NEXT. One handler per endpoint, with
 * nats-server's `type` names and error codes.
 */
import { parsePullRequest, type Consumer } from '../consumer.ts';
import { isValidConsumerName, normalizeConsumerConfig } from '../consumer-config.ts';
import type { ConsumerRegistry, CreateAction } from '../consumers.ts';
import type { Stream } from '../stream.ts';
import {
  JsApiError,
  JsApiErrorCode,
  newConsumerConfigRequiredError,
  newConsumerCreateFilterSubjectMismatchError,
  newConsumerDurableNameNotInSubjectError,
  newConsumerDurableNameNotMatchSubjectError,
  newConsumerDurableNameNotSetError,
  newConsumerEphemeralWithDurableNameError,
  newConsumerMultipleFiltersNotAllowedError,
  newConsumerNotFoundError,
  newInvalidJSONError,
  newStreamMismatchError,
} from './errors.generated.ts';
import { bodyOrError, LIST_PAGE_MAX, lookupStream, NAMES_PAGE_MAX, pageOf, type ApiContext, type ApiRequest } from './stream-api.ts';

type ConsumerApiHandler = (registry: ConsumerRegistry, context: ApiContext, request: ApiRequest) => Promise<void> | void;

/** Dispatches a `$JS.API.CONSUMER.*` request (tokens after `$JS.API.`). */
export function handleConsumerApi(registry: ConsumerRegistry, context: ApiContext, request: ApiRequest): Promise<void> | void {
  const handler = CONSUMER_API_HANDLERS.get(request.tokens[1] ?? '');
  if (handler === undefined) return;
  return handler(registry, context, request);
}

/** The subject form of a create request and what its tokens say. */
type CreateSubject = {
  readonly streamName: string;
  /** DURABLE.CREATE: the durable token ('' when missing). */
  readonly durable: string | undefined;
  /** New API: the consumer token; undefined for the legacy forms. */
  readonly name: string | undefined;
  /** New API: the filter suffix ('' when none). */
  readonly filter: string;
};

function parseCreateSubject(tokens: readonly string[]): CreateSubject {
  if (tokens[1] === 'DURABLE') {
    return { streamName: tokens[3] ?? '', durable: tokens.length === 5 ? (tokens[4] ?? '') : '', name: undefined, filter: '' };
  }
  return { streamName: tokens[2] ?? '', durable: undefined, name: tokens[3], filter: tokens.slice(4).join('.') };
}

/**
 * Checks the subject against the request's config (NATS-SPEC.md §2.5 "Subject/body
 * consistency") and fills in what the subject implies (the consumer name).
 */
function reconcileCreateSubject(form: CreateSubject, config: Record<string, unknown>): JsApiError | undefined {
  const durable = typeof config['durable_name'] === 'string' ? config['durable_name'] : '';
  const name = typeof config['name'] === 'string' ? config['name'] : '';
  if (form.durable !== undefined) {
    if (form.durable === '') return newConsumerDurableNameNotInSubjectError();
    if (durable === '') return newConsumerDurableNameNotSetError();
    if (durable !== form.durable) return newConsumerDurableNameNotMatchSubjectError();
    return undefined;
  }
  if (form.name === undefined) {
    if (durable !== '') return newConsumerEphemeralWithDurableNameError();
    return undefined;
  }
  if (durable !== '' && durable !== form.name) return newConsumerDurableNameNotMatchSubjectError();
  if (name !== '' && name !== form.name) return newConsumerDurableNameNotMatchSubjectError();
  if (form.filter !== '') {
    const filterSubjects = config['filter_subjects'];
    if (Array.isArray(filterSubjects) && filterSubjects.length > 0) return newConsumerMultipleFiltersNotAllowedError();
    if (config['filter_subject'] !== form.filter) return newConsumerCreateFilterSubjectMismatchError();
  }
  if (name === '' && durable === '') config['name'] = form.name;
  return undefined;
}

function parseAction(value: unknown): CreateAction | JsApiError {
  if (value === undefined || value === null || value === '') return '';
  if (value === 'create' || value === 'update') return value;
  return newInvalidJSONError({ err: `unknown consumer action: ${JSON.stringify(value)}` });
}

async function handleCreate(registry: ConsumerRegistry, context: ApiContext, request: ApiRequest): Promise<void> {
  const typeName = 'consumer_create_response';
  const js = context.jetstream;
  const body = bodyOrError(context, request, typeName);
  if (body === undefined) return;
  if (request.tokens[1] === 'DURABLE' && request.tokens[2] !== 'CREATE') return;
  const form = parseCreateSubject(request.tokens);
  if (body['stream_name'] !== form.streamName) return js.respondError(request.reply, typeName, newStreamMismatchError());
  const stream = lookupStream(context, request, typeName, form.streamName);
  if (stream === undefined) return;
  const rawConfig = body['config'];
  if (rawConfig === undefined || rawConfig === null) return js.respondError(request.reply, typeName, newConsumerConfigRequiredError());
  if (typeof rawConfig !== 'object' || Array.isArray(rawConfig)) {
    return js.respondError(request.reply, typeName, newInvalidJSONError({ err: 'json: cannot unmarshal into Go struct field CreateConsumerRequest.config' }));
  }
  const config = { ...(rawConfig as Record<string, unknown>) };
  const mismatch = reconcileCreateSubject(form, config);
  if (mismatch !== undefined) return js.respondError(request.reply, typeName, mismatch);
  const action = parseAction(body['action']);
  if (action instanceof JsApiError) return js.respondError(request.reply, typeName, action);
  const normalized = normalizeConsumerConfig(config, stream.config);
  if (normalized instanceof JsApiError) return js.respondError(request.reply, typeName, normalized);
  if (normalized.name === '') normalized.name = registry.generateName(stream.name);
  const info = await registry.createOrUpdate(stream, normalized, action);
  if (info instanceof JsApiError) return js.respondError(request.reply, typeName, info);
  js.respond(request.reply, typeName, info);
}

/** `CONSUMER.<op>.<stream>.<consumer>` with both names checked. */
function lookupConsumer(
  registry: ConsumerRegistry,
  context: ApiContext,
  request: ApiRequest,
  typeName: string,
): { stream: Stream; name: string } | undefined {
  const stream = lookupStream(context, request, typeName, request.tokens[2] ?? '');
  if (stream === undefined) return undefined;
  const name = request.tokens.slice(3).join('.');
  if (!isValidConsumerName(name) || registry.get(stream.name, name) === undefined) {
    context.jetstream.respondError(request.reply, typeName, newConsumerNotFoundError());
    return undefined;
  }
  return { stream, name };
}

function handleInfo(registry: ConsumerRegistry, context: ApiContext, request: ApiRequest): void {
  const typeName = 'consumer_info_response';
  const found = lookupConsumer(registry, context, request, typeName);
  if (found === undefined) return;
  context.jetstream.respond(request.reply, typeName, registry.get(found.stream.name, found.name)!.info());
}

async function handleDelete(registry: ConsumerRegistry, context: ApiContext, request: ApiRequest): Promise<void> {
  const typeName = 'consumer_delete_response';
  const found = lookupConsumer(registry, context, request, typeName);
  if (found === undefined) return;
  await registry.delete(found.stream, found.name);
  context.jetstream.respond(request.reply, typeName, { success: true });
}

/** CONSUMER.NAMES and CONSUMER.LIST: the same paging, different page sizes and items. */
function respondConsumerPage(
  context: ApiContext,
  request: ApiRequest,
  options: { registry: ConsumerRegistry; typeName: string; pageMax: number; item: (consumer: Consumer) => unknown },
): void {
  const body = bodyOrError(context, request, options.typeName);
  if (body === undefined) return;
  const stream = lookupStream(context, request, options.typeName, request.tokens[2] ?? '');
  if (stream === undefined) return;
  const consumers = options.registry.list(stream.name);
  const { page, offset } = pageOf(consumers, body, options.pageMax);
  context.jetstream.respond(request.reply, options.typeName, {
    total: consumers.length,
    offset,
    limit: options.pageMax,
    consumers: page.map(options.item),
  });
}

function handleNames(registry: ConsumerRegistry, context: ApiContext, request: ApiRequest): void {
  respondConsumerPage(context, request, { registry, typeName: 'consumer_names_response', pageMax: NAMES_PAGE_MAX, item: (consumer) => consumer.name });
}

function handleList(registry: ConsumerRegistry, context: ApiContext, request: ApiRequest): void {
  respondConsumerPage(context, request, { registry, typeName: 'consumer_list_response', pageMax: LIST_PAGE_MAX, item: (consumer) => consumer.info() });
}

/** `CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request; replies are status messages, not JSON. */
function handleNext(registry: ConsumerRegistry, _context: ApiContext, request: ApiRequest): void {
  if (request.tokens[2] !== 'NEXT' || request.reply === '') return;
  const consumer = registry.get(request.tokens[3] ?? '', request.tokens.slice(4).join('.'));
  if (consumer === undefined) {
    registry.sendNoResponders(request.reply);
    return;
  }
  consumer.processPullRequest(request.reply, parsePullRequest(request.body));
}

/** 2.11+ endpoints canopy does not implement (it advertises 2.10). */
function handleUnsupported(_registry: ConsumerRegistry, context: ApiContext, request: ApiRequest): void {
  const operation = request.tokens[1] ?? '';
  const typeName = `consumer_${operation.toLowerCase()}_response`;
  const error = new JsApiError({ status: 400, errCode: JsApiErrorCode.badRequest, description: `consumer ${operation.toLowerCase()} is not supported by canopy` });
  context.jetstream.respondError(request.reply, typeName, error);
}

/** Handlers by the token after `CONSUMER.`. */
const CONSUMER_API_HANDLERS: ReadonlyMap<string, ConsumerApiHandler> = new Map<string, ConsumerApiHandler>([
  ['CREATE', handleCreate],
  ['DURABLE', handleCreate],
  ['INFO', handleInfo],
  ['DELETE', handleDelete],
  ['NAMES', handleNames],
  ['LIST', handleList],
  ['MSG', handleNext],
  ['PAUSE', handleUnsupported],
  ['UNPIN', handleUnsupported],
  ['RESET', handleUnsupported],
]);
