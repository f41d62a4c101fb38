/**
 * Routing a message to the subscribers of one subject while writing another
 * subject into MSG/HMSG. JetStream needs it: a consumer's data message must
 * reach the subscription of the deliver subject (push) or of the pull
 * request's reply inbox, but carry the stored subject (NATS-SPEC.md §4.2).
 */
import type { Sublist } from '../subjects/sublist.ts';
import { deliverMessage, deliverToQueue } from './router.ts';
import type { Subscription } from './subscription.ts';

/**
 * Delivers to every plain subscription matching `target` and to one random
 * member of each matching queue group (as the router does), with `subject` as
 * the MSG subject. Returns the number of deliveries (0: nobody is interested).
 */
export function deliverAs(
  sublist: Sublist<Subscription>,
  target: string,
  subject: string,
  reply: string,
  headerBytes: number,
  data: Buffer,
): number {
  // Positional arguments, not an options object: this runs once per delivered JetStream message.
  const result = sublist.match(target);
  let deliveries = 0;
  const plain = result.plain;
  for (let i = 0; i < plain.length; i++) {
    if (deliverMessage(plain[i]!, subject, reply, headerBytes, data)) deliveries++;
  }
  const queues = result.queues;
  for (let q = 0; q < queues.length; q++) {
    // nats-server parity: one member of each queue group, picked at random (router.ts deliverToQueue).
    if (deliverToQueue(queues[q]!, undefined, subject, reply, headerBytes, data)) deliveries++;
  }
  return deliveries;
}
