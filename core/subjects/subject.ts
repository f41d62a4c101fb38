/**
 * Subject grammar (NATS-SPEC.md §1.7): pure functions on latin1 strings.
 *
 * A subject is tokens separated by `.`. `*` (one token) and `>` (one or more
 * tokens, last only) are wildcards only when they are a whole token: `foo*`
 * and `>bar` are literal tokens. Everything here is a charCode or `indexOf`
 * loop: no regex, no `split`, no allocation unless a function returns tokens.
 *
 * Which validator applies where (nats-server parity, read from
 * server/client.go and server/sublist.go):
 * - SUB: {@link isValidSubject}. nats-server's processSubEx only reports
 *   `-ERR 'Invalid Subject'` when `Sublist.Insert` fails (empty token, or a
 *   token after `>`); space, tab, CR and LF cannot reach it because the SUB
 *   line is split on them (client.go splitArg). The one difference: `\f` inside
 *   a SUB subject passes nats-server's Insert but fails IsValidSubject here.
 * - PUB, pedantic: {@link isValidLiteralSubject}; nats-server sends
 *   `-ERR 'Invalid Publish Subject'` and still routes the message.
 * - PUB, not pedantic: {@link isValidPublishSubject}; nats-server checks nothing.
 * - Subjects the server itself publishes to (JetStream deliver subjects,
 *   prefixes): {@link isValidLiteralPublishSubject}, nats-server's
 *   `IsValidPublishSubject` (the names differ on purpose: ours say when).
 * - Queue names: nats-server does not validate them at all (processSubEx
 *   passes `sub.queue` straight to Insert; only permissions look at it).
 */

const DOT = 0x2e; // '.'
const STAR = 0x2a; // '*', partial wildcard (pwc)
const GT = 0x3e; // '>', full wildcard (fwc)
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const FF = 0x0c;
const CR = 0x0d;

/** `*`: matches exactly one token. */
export const PARTIAL_WILDCARD = '*';
/** `>`: matches one or more tokens; only valid as the last token. */
export const FULL_WILDCARD = '>';
/** Token separator. */
export const TOKEN_SEPARATOR = '.';

function isSubjectWhitespace(code: number): boolean {
  // nats-server parity: sublist.go isValidSubject rejects exactly " \t\n\f\r".
  return code === SPACE || code === TAB || code === LF || code === FF || code === CR;
}

/**
 * A subject a client may subscribe to: non-empty, no empty token (no leading,
 * trailing or double dot), no space/tab/CR/LF/FF, and `>` only as the last
 * token. Wildcard characters inside a longer token are literal.
 *
 * nats-server parity: server/sublist.go `IsValidSubject` (`checkRunes` off:
 * NUL and invalid UTF-8 are not rejected).
 */
export function isValidSubject(subject: string): boolean {
  const length = subject.length;
  if (length === 0) return false;
  let tokenStart = 0;
  let hasFullWildcard = false;
  for (let i = 0; i <= length; i++) {
    const code = i === length ? DOT : subject.charCodeAt(i);
    if (code === DOT) {
      const tokenLength = i - tokenStart;
      // An empty token, or any token after a `>` token.
      if (tokenLength === 0 || hasFullWildcard) return false;
      if (tokenLength === 1 && subject.charCodeAt(tokenStart) === GT) hasFullWildcard = true;
      tokenStart = i + 1;
    } else if (isSubjectWhitespace(code)) {
      return false;
    }
  }
  return true;
}

/**
 * True when no token is a wildcard (`*` or `>` on its own). Does not validate.
 * nats-server parity: server/sublist.go `subjectIsLiteral`.
 */
export function subjectIsLiteral(subject: string): boolean {
  return !subjectHasWildcard(subject);
}

/**
 * True when some token is exactly `*` or `>`. Does not validate.
 * nats-server parity: server/sublist.go `subjectHasWildcard`.
 */
export function subjectHasWildcard(subject: string): boolean {
  const last = subject.length - 1;
  for (let i = 0; i <= last; i++) {
    const code = subject.charCodeAt(i);
    if (code !== STAR && code !== GT) continue;
    if ((i === 0 || subject.charCodeAt(i - 1) === DOT) && (i === last || subject.charCodeAt(i + 1) === DOT)) {
      return true;
    }
  }
  return false;
}

/**
 * The check a pedantic connection's PUB/HPUB subject gets: no empty token
 * and no wildcard token. Like nats-server, it does not look for whitespace
 * (space and tab cannot be in a PUB subject anyway: the line is split on them).
 *
 * nats-server parity: server/sublist.go `IsValidLiteralSubject`, called from
 * client.go `processPub`/`processHeaderPub` when `c.opts.Pedantic`.
 */
export function isValidLiteralSubject(subject: string): boolean {
  const length = subject.length;
  let tokenStart = 0;
  for (let i = 0; i <= length; i++) {
    if (i < length && subject.charCodeAt(i) !== DOT) continue;
    const tokenLength = i - tokenStart;
    if (tokenLength === 0) return false; // also rejects the empty subject
    if (tokenLength === 1) {
      const code = subject.charCodeAt(tokenStart);
      if (code === STAR || code === GT) return false;
    }
    tokenStart = i + 1;
  }
  return true;
}

/**
 * A valid subject with no wildcard token: what a subject must be wherever a
 * message will be *published to it* by the server (JetStream deliver
 * subjects, API prefixes, republish destinations).
 *
 * nats-server parity: server/sublist.go `IsValidPublishSubject`
 * (= IsValidSubject && subjectIsLiteral). Not the PUB-time check; see
 * {@link isValidPublishSubject} and {@link isValidLiteralSubject}.
 */
export function isValidLiteralPublishSubject(subject: string): boolean {
  return isValidSubject(subject) && !subjectHasWildcard(subject);
}

/**
 * What a non-pedantic connection may PUB/HPUB to: anything the control-line
 * parser produced. Wildcard tokens are accepted and routed as literal tokens
 * (nats.js/nats.go publish `$JS.API.CONSUMER.CREATE.<s>.<c>.orders.*`), and a
 * subject with an empty token (`foo..bar`) is accepted but matches nothing
 * (see `Sublist.match` in sublist.ts).
 *
 * nats-server parity: server/client.go `processPub`/`processHeaderPub` only
 * check the subject when `c.opts.Pedantic`; `processInboundClientMsg` checks
 * permissions and reserved prefixes, not the grammar.
 */
export function isValidPublishSubject(subject: string): boolean {
  return subject.length > 0;
}

/** Number of tokens (`''` has 0). nats-server parity: server/sublist.go `numTokens`. */
export function numTokens(subject: string): number {
  if (subject.length === 0) return 0;
  let count = 1;
  let dot = subject.indexOf(TOKEN_SEPARATOR);
  while (dot !== -1) {
    count++;
    dot = subject.indexOf(TOKEN_SEPARATOR, dot + 1);
  }
  return count;
}

/**
 * The 1-based `index`th token, or `''` when there is none.
 * nats-server parity: server/sublist.go `tokenAt`.
 */
export function tokenAt(subject: string, index: number): string {
  if (index < 1) return '';
  let start = 0;
  for (let n = 1; n < index; n++) {
    const dot = subject.indexOf(TOKEN_SEPARATOR, start);
    if (dot === -1) return '';
    start = dot + 1;
  }
  const end = subject.indexOf(TOKEN_SEPARATOR, start);
  return end === -1 ? subject.substring(start) : subject.substring(start, end);
}

/**
 * Splits into tokens, appending to `out` (which is returned). Empty tokens are
 * kept, so `tokenize('a..b')` is `['a', '', 'b']`. Not for the per-message
 * path: the sublist tokenizes into its own scratch array.
 */
export function tokenize(subject: string, out: string[] = []): string[] {
  let start = 0;
  let dot = subject.indexOf(TOKEN_SEPARATOR);
  while (dot !== -1) {
    out.push(subject.substring(start, dot));
    start = dot + 1;
    dot = subject.indexOf(TOKEN_SEPARATOR, start);
  }
  out.push(subject.substring(start));
  return out;
}

/** True when `subject[start, end)` is exactly the one-character token `code`. */
function isTokenChar(subject: string, start: number, end: number, code: number): boolean {
  return end - start === 1 && subject.charCodeAt(start) === code;
}

/** True when `a[aStart, aEnd)` and `b[bStart, bEnd)` hold the same characters. */
function tokensEqual(a: string, aStart: number, aEnd: number, b: string, bStart: number, bEnd: number): boolean {
  const length = aEnd - aStart;
  if (length !== bEnd - bStart) return false;
  for (let i = 0; i < length; i++) {
    if (a.charCodeAt(aStart + i) !== b.charCodeAt(bStart + i)) return false;
  }
  return true;
}

/**
 * Does the published `subject` match subscription `filter`? This is exactly
 * the rule `Sublist.match` (sublist.ts) applies:
 * - a filter `*` token matches any one subject token, a filter `>` token
 *   matches all remaining subject tokens (at least one);
 * - a `*` or `>` token in the *subject* is a literal token (non-pedantic
 *   publishers): it matches filter wildcards, never a literal filter token;
 * - a subject that is empty or has an empty token matches nothing
 *   (nats-server parity: server/sublist.go `match` returns the empty result).
 * `filter` is assumed valid ({@link isValidSubject}).
 */
export function subjectMatchesFilter(subject: string, filter: string): boolean {
  const subjectLength = subject.length;
  const filterLength = filter.length;
  if (subjectLength === 0 || filterLength === 0) return false;
  let subjectStart = 0;
  let filterStart = 0;
  for (;;) {
    let subjectEnd = subject.indexOf(TOKEN_SEPARATOR, subjectStart);
    if (subjectEnd === -1) subjectEnd = subjectLength;
    if (subjectEnd === subjectStart) return false; // empty subject token
    let filterEnd = filter.indexOf(TOKEN_SEPARATOR, filterStart);
    if (filterEnd === -1) filterEnd = filterLength;
    if (isTokenChar(filter, filterStart, filterEnd, GT)) {
      // `>` takes this token and every later one; they must all be non-empty.
      return subjectEnd === subjectLength || hasNoEmptyToken(subject, subjectEnd + 1);
    }
    if (
      !isTokenChar(filter, filterStart, filterEnd, STAR) &&
      !tokensEqual(subject, subjectStart, subjectEnd, filter, filterStart, filterEnd)
    ) {
      return false;
    }
    const isSubjectDone = subjectEnd === subjectLength;
    const isFilterDone = filterEnd === filterLength;
    if (isSubjectDone || isFilterDone) return isSubjectDone && isFilterDone;
    subjectStart = subjectEnd + 1;
    filterStart = filterEnd + 1;
  }
}

/** True when `subject[from..]` (non-empty, following a dot) has no empty token. */
function hasNoEmptyToken(subject: string, from: number): boolean {
  const length = subject.length;
  if (from >= length) return false; // trailing dot
  let previous = from - 1; // index of the dot before `from`
  for (let i = from; i <= length; i++) {
    if (i < length && subject.charCodeAt(i) !== DOT) continue;
    if (i - previous === 1) return false;
    previous = i;
  }
  return true;
}

/**
 * Can some literal subject match both `a` and `b` (each a valid subject,
 * wildcards allowed)? Used for stream-subject and consumer-filter overlap.
 *
 * Agrees with nats-server's server/sublist.go `SubjectsCollide` for subjects
 * whose wildcards are whole tokens. Deliberate difference: nats-server's
 * `tokensCanMatch`/`isSubsetMatchTokenized` treat any token *starting* with
 * `*` or `>` (`*bar`) as a wildcard; here only whole-token wildcards count,
 * consistently with matching.
 */
export function subjectsOverlap(a: string, b: string): boolean {
  if (a === b) return a.length > 0;
  const aLength = a.length;
  const bLength = b.length;
  if (aLength === 0 || bLength === 0) return false;
  let aStart = 0;
  let bStart = 0;
  for (;;) {
    let aEnd = a.indexOf(TOKEN_SEPARATOR, aStart);
    if (aEnd === -1) aEnd = aLength;
    let bEnd = b.indexOf(TOKEN_SEPARATOR, bStart);
    if (bEnd === -1) bEnd = bLength;
    // `>` covers the other side's rest, which has at least this one token.
    if (isTokenChar(a, aStart, aEnd, GT) || isTokenChar(b, bStart, bEnd, GT)) return true;
    if (
      !isTokenChar(a, aStart, aEnd, STAR) &&
      !isTokenChar(b, bStart, bEnd, STAR) &&
      !tokensEqual(a, aStart, aEnd, b, bStart, bEnd)
    ) {
      return false;
    }
    const isADone = aEnd === aLength;
    const isBDone = bEnd === bLength;
    if (isADone || isBDone) return isADone && isBDone;
    aStart = aEnd + 1;
    bStart = bEnd + 1;
  }
}

/**
 * Is every subject matching `subset` also matched by `superset`? (nats-server
 * subjectIsSubsetMatch: overlapping consumer filters, imports of exported subjects.)
 */
export function isSubjectSubset(subset: string, superset: string): boolean {
  const a = subset.split('.');
  const b = superset.split('.');
  for (let i = 0; i < b.length; i++) {
    const token = b[i]!;
    if (token === '>') return i < a.length;
    if (i >= a.length) return false;
    const mine = a[i]!;
    if (token === '*') {
      if (mine === '>') return false;
      continue;
    }
    if (mine !== token) return false;
  }
  return a.length === b.length;
}
