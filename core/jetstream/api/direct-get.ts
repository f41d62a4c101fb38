/**
 * Direct Get (NATS-SPEC.md §2.9): with allow_direct, the stream itself answers
 * `$JS.API.DIRECT.GET.<stream>[.<subject>]` with the stored message, its headers
 * plus Nats-Stream / Nats-Subject / Nats-Sequence / Nats-Time-Stamp. Errors are
 * status messages. Without allow_direct nobody subscribes: the requester gets 503.
 */
import type { InternalClient } from '../../server/internal-client.ts';
import type { Subscription } from '../../server/subscription.ts';
import { formatRfc3339Ns } from '../../util/time.ts';
import type { Stream } from '../stream.ts';
import { StoreError, type StoredMessage } from '../store.ts';
import { parseApiBody } from './body.ts';
import { JsApiError } from './errors.generated.ts';
import { parseGetRequest } from './stream-api.ts';

export const DIRECT_GET_PREFIX = '$JS.API.DIRECT.GET.';
/** nats-server answers direct gets in queue group `_sys_` (one answer per request when mirrors answer too). */
export const DIRECT_GET_QUEUE = '_sys_';
/** The status for a damaged (quarantined) message: canopy's own; nats-server has no checksums to fail. */
export const DAMAGED_STATUS = '500 Message Damaged';

function statusReply(client: InternalClient, reply: string, status: string): void {
  const header = Buffer.from(`NATS/1.0 ${status}\r\n\r\n`, 'latin1');
  client.publish(reply, '', header.length, header);
}

/** The stored message as a reply: its headers (without the final blank line) plus the four Nats-* headers. */
export function directGetReply(streamName: string, message: StoredMessage): { headerBytes: number; data: Buffer } {
  let block = message.headers !== undefined && message.headers.length >= 4 ? message.headers.toString('latin1').slice(0, -2) : 'NATS/1.0\r\n';
  block += `Nats-Stream: ${streamName}\r\nNats-Subject: ${message.subject}\r\nNats-Sequence: ${message.seq}\r\n`;
  block += `Nats-Time-Stamp: ${formatRfc3339Ns(message.timestampNs)}\r\n\r\n`;
  const header = Buffer.from(block, 'latin1');
  return { headerBytes: header.length, data: Buffer.concat([header, message.data]) };
}

function onDirectGet(client: InternalClient, stream: Stream, subject: string, reply: string, headerBytes: number, data: Buffer): void {
  if (reply === '') return;
  const prefix = `${DIRECT_GET_PREFIX}${stream.name}`;
  let message: StoredMessage | undefined;
  const body = data.subarray(headerBytes);
  if (subject.length > prefix.length) {
    // Subject form: the rest of the subject names the message subject; the body must be empty.
    const text = body.toString('utf8').trim();
    if (text !== '' && text !== '{}') return statusReply(client, reply, '408 Bad Request');
    const found = stream.getMessage({ last_by_subj: subject.slice(prefix.length + 1) });
    if (found instanceof StoreError) return statusReply(client, reply, DAMAGED_STATUS);
    message = found;
  } else {
    if (body.length === 0) return statusReply(client, reply, '408 Empty Request');
    const parsed = parseApiBody(Buffer.from(body));
    if (parsed instanceof JsApiError) return statusReply(client, reply, '408 Malformed Request');
    const request = parseGetRequest(parsed);
    if (request === undefined) return statusReply(client, reply, Object.keys(parsed).length === 0 ? '408 Empty Request' : '408 Bad Request');
    const found = stream.getMessage(request);
    if (found instanceof StoreError) return statusReply(client, reply, DAMAGED_STATUS);
    message = found;
  }
  if (message === undefined) return statusReply(client, reply, '404 Message Not Found');
  const { headerBytes: replyHeaderBytes, data: replyData } = directGetReply(stream.name, message);
  client.publish(reply, '', replyHeaderBytes, replyData);
}

/** Subscribes or unsubscribes a stream's direct-get responders to match its allow_direct. */
export class DirectGetResponders {
  readonly #client: InternalClient;
  readonly #subscriptions = new Map<string, Subscription[]>();

  constructor(client: InternalClient) {
    this.#client = client;
  }

  sync(stream: Stream): void {
    const isOn = this.#subscriptions.has(stream.name);
    if (stream.config.allow_direct === isOn) return;
    if (!stream.config.allow_direct) return this.remove(stream.name);
    const handler = (subject: string, reply: string, headerBytes: number, data: Buffer): void =>
      onDirectGet(this.#client, stream, subject, reply, headerBytes, data);
    this.#subscriptions.set(stream.name, [
      this.#client.subscribe(`${DIRECT_GET_PREFIX}${stream.name}`, handler, { queue: DIRECT_GET_QUEUE }),
      this.#client.subscribe(`${DIRECT_GET_PREFIX}${stream.name}.>`, handler, { queue: DIRECT_GET_QUEUE }),
    ]);
  }

  remove(name: string): void {
    for (const subscription of this.#subscriptions.get(name) ?? []) this.#client.unsubscribe(subscription);
    this.#subscriptions.delete(name);
  }
}
