import { JsApiError, newInvalidJSONError } from './errors.generated.ts';

/** Parses a request body as a JSON object; empty → {} (NATS-SPEC.md §2.1). */
export function parseApiBody(body: Buffer): Record<string, unknown> | JsApiError {
  const text = body.toString('utf8').trim();
  if (text === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return newInvalidJSONError({ err: 'expected an object' });
    return parsed as Record<string, unknown>;
  } catch (err) {
    return newInvalidJSONError({ err: err as Error });
  }
}
