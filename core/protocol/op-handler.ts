/**
 * The seam between the protocol parser and whoever acts on the operations
 * (STYLE.md §2.3 "Parser → handler"). The parser calls one method per complete
 * operation; it never allocates an event object.
 *
 * Ownership: every Buffer argument is a view into the parser's input (or its
 * split-read scratch buffer) and is valid only until the method returns. A
 * handler that keeps the bytes must copy them.
 */
export interface OpHandler {
  /** `CONNECT <json>`: the raw JSON bytes, not yet parsed. */
  onConnect(json: Buffer): void;
  /**
   * `PUB <subject> [reply] <#bytes>` (headerBytes = 0) or
   * `HPUB <subject> [reply] <#hdr> <#total>` (headerBytes = #hdr; 0 is allowed and means no headers).
   * `data` holds headers followed by payload, `data.length` = #bytes / #total.
   * `reply` is '' when absent. Subject and reply are latin1 strings, not validated.
   */
  onPub(subject: string, reply: string, headerBytes: number, data: Buffer): void;
  /** `SUB <subject> [queue] <sid>`: `queue` is '' when absent. Nothing is validated. */
  onSub(subject: string, queue: string, sid: string): void;
  /** `UNSUB <sid> [max]`: `maxMsgs` is 0 when absent. */
  onUnsub(sid: string, maxMsgs: number): void;
  onPing(): void;
  onPong(): void;
}
