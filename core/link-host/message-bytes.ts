/**
 * The bytes of one received WebSocket message, as either link end gets it from `ws` (its RawData:
 * a Buffer with binaryType 'nodebuffer', fragments joined into an array, or an ArrayBuffer).
 * No `ws` import: the shapes are spelled out, so core stays free of the transport.
 */
export function wsMessageBytes(data: Buffer | ArrayBuffer | readonly Buffer[]): Uint8Array {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return new Uint8Array(data as ArrayBuffer);
}
