import type { SublistEntry } from '../subjects/sublist.ts';

/** Who receives a subscription's messages: a client connection, or an internal client of the server. */
export interface SubscriptionOwner {
  readonly cid: number;
  /** False for clients that did not say headers:true; the router strips headers for them. */
  readonly hasHeaders: boolean;
  /**
   * One message for the subscription `sid`. `data` (headers then payload) is valid only during the call.
   * Returns false when the owner refused it (a client's subscribe deny list), so a queue group can try another member.
   */
  deliver(sid: string, subject: string, reply: string, headerBytes: number, data: Buffer): boolean;
  removeSubscription(subscription: Subscription): void;
}

/** One SUB of one connection. Lives in the connection's sid map and in the server's sublist. */
export class Subscription implements SublistEntry {
  readonly subject: string;
  /** '' when not in a queue group. */
  readonly queue: string;
  readonly sid: string;
  readonly connection: SubscriptionOwner;
  /** Auto-unsubscribe after this many deliveries (UNSUB <sid> <max>); 0 = never. */
  maxMsgs: number;
  deliveredMsgs: number;

  constructor(options: { subject: string; queue: string; sid: string; connection: SubscriptionOwner }) {
    this.subject = options.subject;
    this.queue = options.queue;
    this.sid = options.sid;
    this.connection = options.connection;
    this.maxMsgs = 0;
    this.deliveredMsgs = 0;
  }
}
