/**
 * Operating errors of the leaf↔hub link (STYLE.md §2.6 (3)): a stable `code` in Node
 * style, a message saying what was wrong, and the underlying error as `cause` when
 * there is one. The layer that owns the connection decides what to do (for a frame a
 * peer sent: answer `error` with code 'protocol' and close).
 */

/** Stable codes of {@link LinkError}; `code` is API, messages may change. */
export const LinkErrorCode = {
  /**
   * A frame could not be encoded or decoded: bytes that are not a well-formed frame
   * of this protocol (bad envelope, bad CBOR, a field of the wrong type or out of
   * range, a frame type the receiving side never gets), or a frame over the size limit.
   */
  frame: 'ERR_LINK_FRAME',
} as const;
export type LinkErrorCode = (typeof LinkErrorCode)[keyof typeof LinkErrorCode];

/** An operating error of the link. */
export class LinkError extends Error {
  override readonly name = 'LinkError';
  readonly code: LinkErrorCode;
  constructor(code: LinkErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
