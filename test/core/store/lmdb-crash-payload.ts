/** The messages of the crash test (shared by lmdb-crash.test.ts and its child process). */
import { createHash } from 'node:crypto';

export const CRASH_STREAM = 'CRASH';
export const CRASH_SUBJECTS = ['crash.a', 'crash.b', 'crash.c.d'] as const;

/** 100 bytes derived from the sequence: a message stored under another sequence never matches. */
export function crashPayload(seq: number): Buffer {
  const digest = createHash('sha256').update(`crash-${seq}`).digest('hex');
  return Buffer.from(`${seq}:${digest}${digest}`.slice(0, 100));
}
