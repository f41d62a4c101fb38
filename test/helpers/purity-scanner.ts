/**
 * The purity scanner shared by the pure-core tests (hub/raft, core/link): strips comments and
 * string literals from a source file, then reports imports outside an allow-list and banned
 * globals (timers, clocks, randomness, I/O, logging). STYLE.md house rule 1.
 */
const BANNED_IDENTIFIERS = [
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'queueMicrotask',
  'Date',
  'performance',
  'process',
  'require',
  'console',
  'fetch',
  'crypto',
  'globalThis',
  'Buffer',
  'WebSocket',
  'XMLHttpRequest',
];

/** Replaces comments and the contents of string/template literals with spaces, keeping import specifiers visible. */
export function stripCommentsAndStrings(source: string): { code: string; specifiers: string[] } {
  let code = '';
  const specifiers: string[] = [];
  let i = 0;
  while (i < source.length) {
    const char = source[i]!;
    const next = source[i + 1];
    if (char === '/' && next === '/') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (char === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end === -1 ? source.length : end + 2;
      code += ' ';
    } else if (char === "'" || char === '"' || char === '`') {
      let j = i + 1;
      while (j < source.length && source[j] !== char) j += source[j] === '\\' ? 2 : 1;
      const literal = source.slice(i + 1, j);
      if (/(?:from|import)\s*$/.test(code)) specifiers.push(literal);
      code += "''";
      i = j + 1;
    } else {
      code += char;
      i++;
    }
  }
  return { code, specifiers };
}

export function purityViolations(fileName: string, source: string, allowedImports: readonly RegExp[]): string[] {
  const found: string[] = [];
  const { code, specifiers } = stripCommentsAndStrings(source);
  for (const specifier of specifiers) {
    if (!allowedImports.some((pattern) => pattern.test(specifier))) found.push(`${fileName}: forbidden import '${specifier}'`);
  }
  if (/\bimport\s*\(/.test(code)) found.push(`${fileName}: dynamic import()`);
  if (/\bMath\s*\.\s*random\b/.test(code)) found.push(`${fileName}: Math.random`);
  for (const identifier of BANNED_IDENTIFIERS) {
    if (new RegExp(`(?<![.\\w$#])${identifier}\\b`).test(code)) found.push(`${fileName}: banned identifier ${identifier}`);
  }
  return found;
}

