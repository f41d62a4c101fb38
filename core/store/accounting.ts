/**
 * Per-message byte accounting for `StreamStoreState.bytes`, exactly as
 * nats-server counts it, because clients compare `state.bytes` with
 * `max_bytes` and with what nats-server reports for the same messages.
 *
 * The subject counts as `subject.length`: the publish path decodes subjects
 * as latin1 (one char per wire byte), so this is the subject's byte length
 * on the wire, as Go's `len(subj)`.
 */

/**
 * File storage (the LMDB store). nats-server parity: server/filestore.go
 * `fileStoreMsgSize`: record length (4) + seq (8) + ts (8) + subject length (2)
 * + subject + payload + hash (8); with headers also a header length (4) + headers.
 */
export function fileStoreMessageBytes(subjectLength: number, headersLength: number, dataLength: number): number {
  if (headersLength === 0) return 22 + subjectLength + dataLength + 8;
  return 22 + subjectLength + 4 + headersLength + dataLength + 8;
}

/**
 * Memory storage. nats-server parity: server/memstore.go `memStoreMsgSize`:
 * subject + headers + payload + 16 (seq and timestamp).
 */
export function memoryStoreMessageBytes(subjectLength: number, headersLength: number, dataLength: number): number {
  return subjectLength + headersLength + dataLength + 16;
}
