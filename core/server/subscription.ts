import type { SublistEntry } from '../subjects/sublist.ts';
import type { ClientConnection } from './connection.ts';

/** One SUB of one connection. Lives in the connection's sid map and in the server's sublist. */
export class Subscription implements SublistEntry {
  readonly subject: string;
  /** '' when not in a queue group. */
  readonly queue: string;
  readonly sid: string;
  readonly connection: ClientConnection;
  /** Auto-unsubscribe after this many deliveries (UNSUB <sid> <max>); 0 = never. */
  maxMsgs: number;
  deliveredMsgs: number;

  constructor(options: { subject: string; queue: string; sid: string; connection: ClientConnection }) {
    this.subject = options.subject;
    this.queue = options.queue;
    this.sid = options.sid;
    this.connection = options.connection;
    this.maxMsgs = 0;
    this.deliveredMsgs = 0;
  }
}
