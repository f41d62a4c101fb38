/**
 * Byte constants and small byte helpers for the wire parsers (STYLE.md §2.11 rule 2).
 * Plain module-level `const` numbers, so the hot loops compare against literals.
 */

/** `\t` */
export const TAB = 0x09;
/** `\n` */
export const LF = 0x0a;
/** `\r` */
export const CR = 0x0d;
/** ` ` */
export const SPACE = 0x20;
/** `"` */
export const QUOTE = 0x22;
/** `\` */
export const BACKSLASH = 0x5c;
/** `0` */
export const DIGIT_0 = 0x30;
/** `9` */
export const DIGIT_9 = 0x39;

/**
 * The most decimal digits {@link parseSize} accepts (999 999 999 is the largest size).
 * nats-server parity: server/util.go parseSize (`maxParseSizeLen = 9`).
 */
export const SIZE_DIGITS_MAX = 9;

/**
 * Parses `buf[start, end)` as an unsigned decimal size: 1 to {@link SIZE_DIGITS_MAX}
 * ASCII digits, nothing else (no sign, no spaces). Leading zeros are allowed.
 * Returns -1 when the bytes are not such a number.
 *
 * nats-server parity: server/util.go parseSize.
 */
export function parseSize(buf: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length <= 0 || length > SIZE_DIGITS_MAX) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = buf[i]! - DIGIT_0;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

const HEX_DIGITS = '0123456789abcdef';

/**
 * Escapes `buf[start, end)` as a double-quoted, ASCII-only string for logs and
 * error messages: printable ASCII stays, `\r` `\n` `\t` `"` `\` get backslash
 * escapes, every other byte becomes `\xNN` (the shape of Go's `%q`).
 * Not for the hot path.
 */
export function escapeBytes(buf: Uint8Array, start: number, end: number): string {
  let out = '"';
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b === CR) out += '\\r';
    else if (b === LF) out += '\\n';
    else if (b === TAB) out += '\\t';
    else if (b === QUOTE) out += '\\"';
    else if (b === BACKSLASH) out += '\\\\';
    else if (b >= SPACE && b < 0x7f) out += String.fromCharCode(b);
    else out += '\\x' + HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 0x0f]!;
  }
  return out + '"';
}
