/**
 * A client inside the server (JetStream's API handlers, streams, consumers): it
 * subscribes and publishes through the same sublist and router as real clients,
 * without a socket. nats-server has the same notion (internal clients, kind SYSTEM/JETSTREAM).
 */
import { isValidSubject } from '../subjects/subject.ts';
import type { Sublist } from '../subjects/sublist.ts';
import { assert } from '../util/assert.ts';
import { deliverAs } from './deliver-as.ts';
import { routeMessage } from './router.ts';
import { Subscription, type SubscriptionOwner } from './subscription.ts';

/**
 * Receives one message. `data` (headers, then payload) is valid only during the
 * call: copy what you keep. `headerBytes` is 0 when there are no headers. Returning
 * false says nobody received it (an account import's forwarder that reached nobody), so
 * the router counts no delivery and a requester may get its no-responders status.
 */
export type InternalHandler = (subject: string, reply: string, headerBytes: number, data: Buffer) => boolean | void;

export class InternalClient implements SubscriptionOwner {
  readonly cid: number;
  readonly name: string;
  readonly hasHeaders = true;
  readonly #sublist: Sublist<Subscription>;
  readonly #handlers = new Map<string, InternalHandler>();
  readonly #subscriptions = new Map<string, Subscription>();
  #nextSid = 1;

  constructor(options: { cid: number; name: string; sublist: Sublist<Subscription> }) {
    this.cid = options.cid;
    this.name = options.name;
    this.#sublist = options.sublist;
  }

  /** Subscribes `handler` to `subject` (optionally in a queue group); returns the subscription to pass to unsubscribe(). */
  subscribe(subject: string, handler: InternalHandler, options: { queue?: string } = {}): Subscription {
    assert(isValidSubject(subject), `internal subscription to an invalid subject: ${subject}`);
    const sid = String(this.#nextSid++);
    const subscription = new Subscription({ subject, queue: options.queue ?? '', sid, connection: this });
    this.#handlers.set(sid, handler);
    this.#subscriptions.set(sid, subscription);
    this.#sublist.insert(subscription);
    return subscription;
  }

  unsubscribe(subscription: Subscription): void {
    this.removeSubscription(subscription);
  }

  /** Publishes as the server: no echo rules, no no-responders. Returns the number of deliveries. */
  publish(subject: string, reply: string, headerBytes: number, data: Buffer): number {
    return routeMessage(this.#sublist, undefined, subject, reply, headerBytes, data);
  }

  /**
   * Delivers to the subscribers of `target` with `subject` as the MSG subject (a JetStream
   * consumer's data message, NATS-SPEC.md §4.2). Returns the number of deliveries.
   */
  publishAs(target: string, subject: string, reply: string, headerBytes: number, data: Buffer): number {
    return deliverAs(this.#sublist, target, subject, reply, headerBytes, data);
  }

  /** True when some subscription would receive a message on `subject` (e.g. a push consumer's deliver subject). */
  hasInterest(subject: string): boolean {
    const result = this.#sublist.match(subject);
    return result.plain.length > 0 || result.queues.length > 0;
  }

  deliver(sid: string, subject: string, reply: string, headerBytes: number, data: Buffer): boolean {
    const handler = this.#handlers.get(sid);
    return handler === undefined || handler(subject, reply, headerBytes, data) !== false;
  }

  removeSubscription(subscription: Subscription): void {
    if (this.#subscriptions.get(subscription.sid) !== subscription) return;
    this.#subscriptions.delete(subscription.sid);
    this.#handlers.delete(subscription.sid);
    this.#sublist.remove(subscription);
  }

  /** Drops every subscription (shutdown). */
  close(): void {
    for (const subscription of [...this.#subscriptions.values()]) this.removeSubscription(subscription);
  }
}
