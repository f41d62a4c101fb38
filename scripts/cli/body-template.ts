/**
 * Message templates for `canopy pub|req|reply`, with the function names of the
 * `nats` CLI (natscli `PubReplyBodyTemplate`): `{{Count}}`, `{{TimeStamp}}`,
 * `{{Unix}}`, `{{UnixNano}}`, `{{Time}}`, `{{ID}}`, `{{UUID}}`, `{{Request}}` and
 * `{{Random 10 100}}`. natscli evaluates Go templates; we accept the same
 * spellings (`{{Count}}`, `{{ Count }}`, `{{.Count}}`, `{{Cnt}}`) plus the call
 * form `{{Random(10,100)}}`, and nothing else: an unknown name is an error found
 * once, before anything is sent, instead of a message sent with the raw text.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { nuid } from '@nats-io/transport-node';

/** Longest string `{{Random min max}}` may produce: one default max_payload. */
export const RANDOM_LENGTH_MAX = 1024 * 1024;

const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export const TemplateFunction = {
  Count: 'Count',
  Unix: 'Unix',
  UnixNano: 'UnixNano',
  TimeStamp: 'TimeStamp',
  Time: 'Time',
  ID: 'ID',
  UUID: 'UUID',
  Request: 'Request',
  Random: 'Random',
} as const;
export type TemplateFunction = (typeof TemplateFunction)[keyof typeof TemplateFunction];

/** natscli's synonyms: `Cnt` is an older spelling of `Count`. */
const FUNCTION_NAMES: ReadonlyMap<string, TemplateFunction> = new Map([
  ...Object.values(TemplateFunction).map((name) => [name, name] as const),
  ['Cnt', TemplateFunction.Count],
]);

type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'call'; readonly name: TemplateFunction; readonly lengthMin: number; readonly lengthMax: number };

/** A parsed template; render it once per message. */
export type BodyTemplate = {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
  /** False when the source holds no `{{…}}`: render() then returns the source as is. */
  readonly hasCalls: boolean;
};

/** Values that change per message. */
export type TemplateContext = {
  /** 1-based message number. */
  readonly count: number;
  /** The request payload, for `canopy reply`. */
  readonly request?: string;
  /** Injected clock for tests; defaults to the wall clock. */
  readonly now?: Date;
};

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Parses `source`; throws TemplateError naming the first bad `{{…}}`. */
export function compileTemplate(source: string, options: { isEnabled: boolean } = { isEnabled: true }): BodyTemplate {
  if (!options.isEnabled || !source.includes('{{')) {
    return { source, parts: [{ kind: 'text', text: source }], hasCalls: false };
  }
  const parts: TemplatePart[] = [];
  let offset = 0;
  while (offset < source.length) {
    const open = source.indexOf('{{', offset);
    if (open === -1) break;
    const close = source.indexOf('}}', open + 2);
    if (close === -1) throw new TemplateError(`unclosed "{{" at offset ${open} in template ${JSON.stringify(source)}`);
    if (open > offset) parts.push({ kind: 'text', text: source.slice(offset, open) });
    parts.push(compileCall(source.slice(open + 2, close)));
    offset = close + 2;
  }
  if (offset < source.length) parts.push({ kind: 'text', text: source.slice(offset) });
  return { source, parts, hasCalls: true };
}

function compileCall(inner: string): TemplatePart {
  const text = inner.trim().replace(/^\./, '');
  // `Name`, `Name a b` (Go call syntax) or `Name(a, b)`.
  const match = /^([A-Za-z]+)\s*(?:\(([^)]*)\)|((?:\s+\S+)*))$/.exec(text);
  const name = match === null ? undefined : FUNCTION_NAMES.get(match[1] ?? '');
  if (match === null || name === undefined) {
    const known = [...FUNCTION_NAMES.keys()].join(', ');
    throw new TemplateError(`unknown template {{${inner}}} (known: ${known})`);
  }
  const argsText = (match[2] ?? match[3] ?? '').trim();
  const args = argsText === '' ? [] : argsText.split(/[\s,]+/);
  if (name !== TemplateFunction.Random) {
    if (args.length > 0) throw new TemplateError(`template {{${inner}}}: ${name} takes no arguments`);
    return { kind: 'call', name, lengthMin: 0, lengthMax: 0 };
  }
  const lengths = args.map(Number);
  const [first, second] = lengths;
  const isValid =
    lengths.length === 2 && lengths.every((n) => Number.isInteger(n) && n >= 0 && n <= RANDOM_LENGTH_MAX);
  if (!isValid || first === undefined || second === undefined) {
    throw new TemplateError(`template {{${inner}}}: Random takes two lengths between 0 and ${RANDOM_LENGTH_MAX}, e.g. {{Random 10 100}}`);
  }
  return { kind: 'call', name, lengthMin: Math.min(first, second), lengthMax: Math.max(first, second) };
}

/** Renders one message's text. */
export function renderTemplate(template: BodyTemplate, context: TemplateContext): string {
  if (!template.hasCalls) return template.source;
  const now = context.now ?? new Date();
  let out = '';
  for (const part of template.parts) {
    out += part.kind === 'text' ? part.text : renderCall(part, context, now);
  }
  return out;
}

function renderCall(part: TemplatePart & { kind: 'call' }, context: TemplateContext, now: Date): string {
  switch (part.name) {
    case TemplateFunction.Count:
      return String(context.count);
    case TemplateFunction.Unix:
      return String(Math.floor(now.getTime() / 1000));
    case TemplateFunction.UnixNano:
      return (BigInt(now.getTime()) * 1_000_000n).toString();
    case TemplateFunction.TimeStamp:
      return formatRfc3339(now);
    case TemplateFunction.Time:
      return formatKitchen(now);
    case TemplateFunction.ID:
      return nuid.next();
    case TemplateFunction.UUID:
      return randomUUID();
    case TemplateFunction.Request:
      return context.request ?? '';
    case TemplateFunction.Random:
      return randomAlphanumeric(part.lengthMin === part.lengthMax ? part.lengthMin : randomInt(part.lengthMin, part.lengthMax + 1));
  }
}

function randomAlphanumeric(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return out;
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}

/** Go's time.RFC3339 in local time: `2006-01-02T15:04:05-07:00`, `Z` for UTC. */
export function formatRfc3339(date: Date): string {
  const offsetMinutes = -date.getTimezoneOffset();
  const zone =
    offsetMinutes === 0
      ? 'Z'
      : `${offsetMinutes > 0 ? '+' : '-'}${pad2(Math.floor(Math.abs(offsetMinutes) / 60))}:${pad2(Math.abs(offsetMinutes) % 60)}`;
  return (
    `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}` +
    `T${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}${zone}`
  );
}

/** Go's time.Kitchen: `3:04PM`. */
export function formatKitchen(date: Date): string {
  const hours = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  return `${hours}:${pad2(date.getMinutes())}${date.getHours() < 12 ? 'AM' : 'PM'}`;
}
