/** The `metadata` field of stream and consumer configs (NATS-SPEC.md: a map of strings). */
import type { JsApiError } from './api/errors.generated.ts';

/** A config's `metadata`: a map of strings (Go's map[string]string), as nats-server decodes it; `typeError` words the refusal. */
export function readMetadata(raw: Record<string, unknown>, typeError: (key: string, expected: string, value: unknown) => JsApiError): Record<string, string> | undefined | JsApiError {
  const value = raw['metadata'];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return typeError('metadata', 'map[string]string', value);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return undefined;
  const metadata: Record<string, string> = {};
  for (const [key, item] of entries) {
    if (typeof item !== 'string') return typeError('metadata', 'map[string]string', item);
    metadata[key] = item;
  }
  return metadata;
}
