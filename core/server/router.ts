/**
 * PUB → sublist → deliver. Runs once per published message: no allocation
 * beyond what the sublist cache already holds.
 */
import type { Sublist } from '../subjects/sublist.ts';
import type { ClientConnection } from './connection.ts';
import type { Subscription, SubscriptionOwner } from './subscription.ts';

/** `NATS/1.0 503␍␊␍␊`: the no-responders status (nats-server ≤ 2.11 form, NATS-SPEC.md §1.6). */
const NO_RESPONDERS_HEADER = Buffer.from('NATS/1.0 503\r\n\r\n', 'latin1');

/**
 * Delivers one message to one subscription; drops the subscription when it reached its max.
 * False when the owner refused the message (a subscribe deny list): nothing was counted.
 */
export function deliverMessage(
  subscription: Subscription,
  subject: string,
  reply: string,
  headerBytes: number,
  data: Buffer,
): boolean {
  const connection = subscription.connection;
  // nats-server parity: client.go deliverMsg strips headers for clients that did not ask for them.
  const isDelivered =
    headerBytes > 0 && !connection.hasHeaders
      ? connection.deliver(subscription.sid, subject, reply, 0, data.subarray(headerBytes))
      : connection.deliver(subscription.sid, subject, reply, headerBytes, data);
  if (!isDelivered) return false;
  subscription.deliveredMsgs++;
  if (subscription.maxMsgs > 0 && subscription.deliveredMsgs >= subscription.maxMsgs) {
    connection.removeSubscription(subscription);
  }
  return true;
}

/**
 * Routes a published message to every matching plain subscription and to one
 * member of each matching queue group. Returns the number of deliveries.
 */
export function routeMessage(
  sublist: Sublist<Subscription>,
  from: ClientConnection | undefined,
  subject: string,
  reply: string,
  headerBytes: number,
  data: Buffer,
): number {
  // Positional arguments, not an options object: this runs once per message and must not allocate.
  const result = sublist.match(subject);
  const isEcho = from === undefined || from.isEcho;
  let deliveries = 0;
  const plain = result.plain;
  for (let i = 0; i < plain.length; i++) {
    const subscription = plain[i]!;
    if (!isEcho && subscription.connection === from) continue;
    if (deliverMessage(subscription, subject, reply, headerBytes, data)) deliveries++;
  }
  const queues = result.queues;
  const excluded = isEcho ? undefined : from;
  for (let q = 0; q < queues.length; q++) {
    if (deliverToQueue(queues[q]!, excluded, subject, reply, headerBytes, data)) deliveries++;
  }
  if (deliveries === 0 && reply.length > 0 && from !== undefined && from.hasNoResponders) {
    sendNoResponders(sublist, from, reply);
  }
  return deliveries;
}

/**
 * Delivers to one member of a queue group, starting at a random one and skipping
 * `excluded`'s members (echo off). A member that refuses the message (its subscribe
 * deny list) passes it on to the next (nats-server parity: client.go
 * processMsgResults tries further members when deliverMsg fails).
 */
export function deliverToQueue(
  members: readonly Subscription[],
  excluded: SubscriptionOwner | undefined,
  subject: string,
  reply: string,
  headerBytes: number,
  data: Buffer,
): boolean {
  const count = members.length;
  if (count === 0) return false;
  const start = count === 1 ? 0 : Math.floor(Math.random() * count);
  for (let i = 0; i < count; i++) {
    const member = members[(start + i) % count]!;
    if (member.connection === excluded) continue;
    if (deliverMessage(member, subject, reply, headerBytes, data)) return true;
  }
  return false;
}

/**
 * NATS-SPEC.md §1.7: a request that reached nobody gets a 503 status message on
 * the requester's own subscription that matches the reply subject.
 */
function sendNoResponders(sublist: Sublist<Subscription>, from: ClientConnection, reply: string): void {
  const result = sublist.match(reply);
  let target: Subscription | undefined;
  for (let i = 0; i < result.plain.length && target === undefined; i++) {
    if (result.plain[i]!.connection === from) target = result.plain[i];
  }
  for (let q = 0; q < result.queues.length && target === undefined; q++) {
    const members = result.queues[q]!;
    for (let i = 0; i < members.length && target === undefined; i++) {
      if (members[i]!.connection === from) target = members[i];
    }
  }
  if (target === undefined) return;
  deliverMessage(target, reply, '', NO_RESPONDERS_HEADER.length, NO_RESPONDERS_HEADER);
}
