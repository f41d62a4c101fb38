/**
 * A {@link SubjectFilter} compiled once per store call, shared by the memory
 * and LMDB stores so both read filters the same way:
 * - `''`, `'>'`, an empty list, or a list containing `''`/`'>'`: every subject;
 * - only literal subjects: exact lookups (the per-subject index);
 * - otherwise (some wildcard): matching with `subjectMatchesFilter`.
 */
import type { SubjectFilter } from '../jetstream/store.ts';
import { subjectHasWildcard, subjectMatchesFilter } from '../subjects/subject.ts';

export type CompiledFilter =
  | { readonly kind: 'all' }
  | { readonly kind: 'literals'; readonly subjects: readonly string[] }
  | { readonly kind: 'wildcards'; readonly filters: readonly string[] };

const ALL: CompiledFilter = { kind: 'all' };

function isMatchAll(filter: string): boolean {
  return filter === '' || filter === '>';
}

/** Compiles a filter; duplicate list members are dropped. */
export function compileFilter(filter: SubjectFilter): CompiledFilter {
  if (typeof filter === 'string') {
    if (isMatchAll(filter)) return ALL;
    return subjectHasWildcard(filter) ? { kind: 'wildcards', filters: [filter] } : { kind: 'literals', subjects: [filter] };
  }
  if (filter.length === 0) return ALL;
  const unique = [...new Set(filter)];
  let hasWildcard = false;
  for (const member of unique) {
    if (isMatchAll(member)) return ALL;
    if (subjectHasWildcard(member)) hasWildcard = true;
  }
  return hasWildcard ? { kind: 'wildcards', filters: unique } : { kind: 'literals', subjects: unique };
}

/** Does `subject` pass the compiled filter? */
export function filterMatches(filter: CompiledFilter, subject: string): boolean {
  switch (filter.kind) {
    case 'all':
      return true;
    case 'literals':
      return filter.subjects.length === 1 ? filter.subjects[0] === subject : filter.subjects.includes(subject);
    case 'wildcards': {
      const filters = filter.filters;
      for (let i = 0; i < filters.length; i++) {
        if (subjectMatchesFilter(subject, filters[i]!)) return true;
      }
      return false;
    }
  }
}
