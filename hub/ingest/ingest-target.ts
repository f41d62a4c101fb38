/**
 * Where a leaf stream lands on the hub, and under which subjects (issue 4 item 3: "per-stream
 * configuration can choose another target stream or subject transform"; hub/ingest/README.md
 * "Where synced data lands"). The hub operator decides, in the target stream's config metadata,
 * so a leaf can never choose to write outside its namespace:
 *
 * - `"canopy.ingest.streams": "ORDERS,EVENTS"`: leaf streams ORDERS and EVENTS (of every leaf)
 *   land in this hub stream instead of hub streams of their own names. A leaf stream claimed by
 *   two hub streams is refused (error 'stream'), never split between them.
 * - `"canopy.ingest.subject": "eu.{leaf}.{subject}"`: the stored subject, from the leaf's name and
 *   the leaf's subject. Default `{leaf}.{subject}`. The template must hold `{leaf}` as one whole
 *   token after literal tokens only, and end with `{subject}`: every leaf then has a namespace of
 *   its own (the same token position holds its name). An invalid template refuses the leaf
 *   streams that land there, with the reason.
 */
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import type { Stream } from '../../core/jetstream/stream.ts';

export const INGEST_STREAMS_METADATA_KEY = 'canopy.ingest.streams';
export const INGEST_SUBJECT_METADATA_KEY = 'canopy.ingest.subject';
const LEAF_TOKEN = '{leaf}';
const SUBJECT_TOKEN = '{subject}';
const DEFAULT_TEMPLATE = `${LEAF_TOKEN}.${SUBJECT_TOKEN}`;

/** The hub stream leaf stream `stream` lands in: the one whose metadata claims it, else its own name. */
export function ingestTargetOf(jetstream: JetStream, stream: string): { readonly name: string } | { readonly refusal: string } {
  const claims: string[] = [];
  for (const candidate of jetstream.streams.values()) {
    const list = candidate.config.metadata?.[INGEST_STREAMS_METADATA_KEY];
    if (list === undefined) continue;
    if (list.split(',').some((name) => name.trim() === stream)) claims.push(candidate.name);
  }
  if (claims.length > 1) {
    claims.sort();
    return { refusal: `leaf stream ${stream} is claimed by hub streams ${claims.join(', ')} ("${INGEST_STREAMS_METADATA_KEY}"): it must land in one` };
  }
  return { name: claims[0] ?? stream };
}

type Template = { readonly prefix: string; readonly middle: string } | { readonly invalid: string };

const templates = new WeakMap<Stream, Template>();

/** The parsed subject template of a target (cached per Stream object: a config update makes a new one). */
function templateOf(target: Stream): Template {
  let template = templates.get(target);
  if (template === undefined) {
    template = parseTemplate(target.config.metadata?.[INGEST_SUBJECT_METADATA_KEY] ?? DEFAULT_TEMPLATE);
    templates.set(target, template);
  }
  return template;
}

/**
 * `a.b.{leaf}.c.{subject}` → prefix `a.b.`, middle `.c.` (stored: prefix + leaf + middle + subject).
 * Literal tokens: no wildcards, no braces, no whitespace, not empty.
 */
export function parseTemplate(text: string): Template {
  const tokens = text.split('.');
  const leafAt = tokens.indexOf(LEAF_TOKEN);
  const isLiteral = (token: string): boolean => /^[^\s*>{}]+$/.test(token);
  if (leafAt === -1 || tokens.lastIndexOf(LEAF_TOKEN) !== leafAt) return { invalid: `must hold ${LEAF_TOKEN} once, as a whole token` };
  if (tokens.at(-1) !== SUBJECT_TOKEN || tokens.indexOf(SUBJECT_TOKEN) !== tokens.length - 1) return { invalid: `must end with ${SUBJECT_TOKEN}, once` };
  const literals = [...tokens.slice(0, leafAt), ...tokens.slice(leafAt + 1, -1)];
  if (!literals.every(isLiteral)) return { invalid: 'its other tokens must be literal subject tokens (no wildcards, braces or spaces)' };
  const before = tokens.slice(0, leafAt);
  const between = tokens.slice(leafAt + 1, -1);
  return { prefix: before.length === 0 ? '' : `${before.join('.')}.`, middle: between.length === 0 ? '.' : `.${between.join('.')}.` };
}

/** Why `target` cannot take leaf data under its subject template, or undefined. */
export function ingestTemplateRefusal(target: Stream): string | undefined {
  const template = templateOf(target);
  return 'invalid' in template ? `hub stream ${target.name} "${INGEST_SUBJECT_METADATA_KEY}" ${template.invalid}` : undefined;
}

/** The subject leaf `leaf`'s message on `subject` is stored under in `target` (its template must be valid). */
export function ingestSubjectOf(target: Stream, leaf: string, subject: string): string {
  const template = templateOf(target);
  if ('invalid' in template) return `${leaf}.${subject}`; // not reached: refuseTarget refused the target first
  return `${template.prefix}${leaf}${template.middle}${subject}`;
}
