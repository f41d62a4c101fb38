/**
 * Invariant checks. A failed assertion is a programmer error: it throws an
 * AssertionError that must never be caught to continue (STYLE.md §2.6 (4)).
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/** Throws an {@link AssertionError} when `condition` is false. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
