/**
 * `npm run gen:errors`: turns core/jetstream/api/errors.json (nats-server's
 * server/errors.json, copied verbatim) into core/jetstream/api/errors.generated.ts.
 * `npm run gen:errors -- --check` writes nothing and exits 1 when the generated file is
 * missing or differs from what the JSON gives (CI and the unit test run this).
 *
 * Naming (STYLE.md §2.6 (2)): the constant minus its leading `JS` and minus the first
 * matching suffix of `ErrorF`, `ErrF`, `Err`, `F` is the base; the `JsApiErrorCode` key is
 * the base with its first letter lower-cased and the constructor is `new<Base>Error`.
 * So `JSStreamNotFoundErr` gives `streamNotFound` / `newStreamNotFoundError`, and the
 * constructor names are nats-server's `NewJS<Base>Error` helpers with `NewJS` → `new`.
 *
 * Placeholders (`{seq}`, `{err}`, …) become fields of an options object. As in
 * nats-server, `{err}` takes an Error (its message) or a string, other placeholders any
 * string or number, and substitution is a single pass: text put in is never scanned again.
 * Every constructor also takes `{ unless }`: when `unless` is already a JsApiError it is
 * returned instead of a new error (nats-server's `Unless(err)` option).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ERRORS_JSON_PATH = join(REPO_ROOT, 'core/jetstream/api/errors.json');
export const ERRORS_GENERATED_PATH = join(REPO_ROOT, 'core/jetstream/api/errors.generated.ts');

/** One entry of errors.json, with nats-server's field names. */
export interface ErrorEntry {
  constant: string;
  /** HTTP-like status sent as `error.code`. */
  code: number;
  /** Stable JetStream code sent as `error.err_code`. */
  error_code: number;
  /** Text sent as `error.description`, with `{placeholders}`. */
  description: string;
  comment: string;
  help: string;
  url: string;
  deprecates: string;
}

const STRING_FIELDS = ['constant', 'description', 'comment', 'help', 'url', 'deprecates'] as const;
const NUMBER_FIELDS = ['code', 'error_code'] as const;
const NAME_SUFFIXES = ['ErrorF', 'ErrF', 'Err', 'F'] as const;
const PLACEHOLDER = /\{([^{}]+)\}/g;
const PLACEHOLDER_NAME = /^[a-z][A-Za-z0-9]*$/;

/** The names the generated module uses for one errors.json constant. */
export function namesForConstant(constant: string): { key: string; ctor: string } {
  if (!/^JS[A-Z]/.test(constant)) throw new Error(`errors.json: constant ${constant} does not start with JS`);
  let base = constant.slice(2);
  const suffix = NAME_SUFFIXES.find((s) => base.endsWith(s) && base.length > s.length);
  if (suffix !== undefined) base = base.slice(0, -suffix.length);
  if (!/^[A-Z][A-Za-z0-9]*$/.test(base)) throw new Error(`errors.json: constant ${constant} gives a bad name ${base}`);
  return { key: base.charAt(0).toLowerCase() + base.slice(1), ctor: `new${base}Error` };
}

/** Placeholder names in a description, in order of first use, without repeats. */
export function placeholdersOf(description: string): string[] {
  const names: string[] = [];
  for (const match of description.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? '';
    if (!PLACEHOLDER_NAME.test(name)) throw new Error(`errors.json: bad placeholder {${name}} in "${description}"`);
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

/** Parses and checks errors.json: field types, and unique constants, codes and generated names. */
export function parseErrorsJson(text: string): ErrorEntry[] {
  const data: unknown = JSON.parse(text);
  if (!Array.isArray(data) || data.length === 0) throw new Error('errors.json: expected a non-empty array');
  const seen = { constant: new Set<string>(), code: new Set<number>(), key: new Set<string>() };
  return data.map((item: unknown, index): ErrorEntry => {
    if (typeof item !== 'object' || item === null) throw new Error(`errors.json[${index}]: not an object`);
    const record = item as Record<string, unknown>;
    for (const field of STRING_FIELDS) {
      if (typeof record[field] !== 'string') throw new Error(`errors.json[${index}].${field}: expected a string`);
    }
    for (const field of NUMBER_FIELDS) {
      if (!Number.isSafeInteger(record[field])) throw new Error(`errors.json[${index}].${field}: expected an integer`);
    }
    const entry = record as unknown as ErrorEntry;
    const { key } = namesForConstant(entry.constant);
    placeholdersOf(entry.description);
    if (seen.constant.has(entry.constant)) throw new Error(`errors.json: duplicate constant ${entry.constant}`);
    if (seen.code.has(entry.error_code)) throw new Error(`errors.json: duplicate error_code ${entry.error_code}`);
    if (seen.key.has(key)) throw new Error(`errors.json: ${entry.constant} gives the name ${key} twice`);
    seen.constant.add(entry.constant);
    seen.code.add(entry.error_code);
    seen.key.add(key);
    const { constant, code, error_code, description, comment, help, url, deprecates } = entry;
    return { constant, code, error_code, description, comment, help, url, deprecates };
  });
}

/** A TS string literal: single quotes unless the text has one. */
function quote(text: string): string {
  if (!text.includes("'")) return `'${text.replaceAll('\\', '\\\\')}'`;
  return JSON.stringify(text);
}

/** Text safe inside a block comment. */
function commentText(text: string): string {
  return text.replaceAll('*/', '*\\/');
}

/** The description as a TS expression, each placeholder read from the options object. */
function descriptionExpression(description: string): string {
  if (placeholdersOf(description).length === 0) return quote(description);
  const escape = (literal: string): string =>
    literal.replaceAll('\\', '\\\\').replaceAll('`', '\\`').replaceAll('${', '\\${');
  let out = '`';
  let last = 0;
  for (const match of description.matchAll(PLACEHOLDER)) {
    out += `${escape(description.slice(last, match.index))}\${argText(${match[1] ?? ''})}`;
    last = match.index + match[0].length;
  }
  return `${out}${escape(description.slice(last))}\``;
}

function renderDoc(entry: ErrorEntry): string[] {
  const lines = [`/**`, ` * ${entry.constant} (${entry.code}, ${entry.error_code}): ${commentText(JSON.stringify(entry.description))}.`];
  if (entry.comment !== '') lines.push(` * ${commentText(entry.comment)}.`);
  if (entry.help !== '') lines.push(` * ${commentText(entry.help)}.`);
  if (entry.deprecates !== '') lines.push(` * nats-server: replaces ${entry.deprecates}.`);
  lines.push(` */`);
  return lines;
}

function renderConstructor(entry: ErrorEntry): string[] {
  const { ctor } = namesForConstant(entry.constant);
  const names = placeholdersOf(entry.description);
  const fields = [...names].sort();
  const params =
    fields.length === 0
      ? 'options?: JsApiErrorOptions'
      : `{ ${fields.join(', ')} }: { ${fields.map((n) => `${n}: ${n === 'err' ? 'JsApiErrorCause' : 'JsApiErrorArg'}`).join('; ')} }, options?: JsApiErrorOptions`;
  return [
    ...renderDoc(entry),
    `export function ${ctor}(${params}): JsApiError {`,
    `  if (options?.unless instanceof JsApiError) return options.unless;`,
    `  return new JsApiError({ status: ${entry.code}, errCode: ${entry.error_code}, description: ${descriptionExpression(entry.description)} });`,
    `}`,
    ``,
  ];
}

const PREAMBLE = `// Generated by scripts/gen-errors.ts from core/jetstream/api/errors.json: do not edit; run npm run gen:errors.
/**
 * JetStream API errors with nats-server's codes (STYLE.md §2.6 (2), NATS-SPEC.md §2.10).
 * \`code\` (HTTP-like status) and \`err_code\` are API; descriptions may change (ADR-7).
 * An API response carries \`{ "type": "...", "error": err.toJSON() }\`.
 */

/** A value put into a \`{placeholder}\`; printed like Go's %v. */
export type JsApiErrorArg = string | number | bigint;
/** What \`{err}\` takes: an Error's message, or a string (nats-server passes err.Error()). */
export type JsApiErrorCause = Error | string;

export interface JsApiErrorOptions {
  /** When this is a JsApiError, the constructor returns it instead (nats-server's Unless option). */
  unless?: unknown;
}

function argText(value: JsApiErrorArg | JsApiErrorCause): string {
  return value instanceof Error ? value.message : String(value);
}
`;

const CLASS = `
/** One JetStream API error. \`message\` is nats-server's Error() text: "<description> (<err_code>)". */
export class JsApiError extends Error {
  override readonly name = 'JsApiError';
  /** HTTP-like status, sent as \`error.code\`. */
  readonly status: number;
  /** Stable code, sent as \`error.err_code\`. */
  readonly errCode: JsApiErrorCode;
  /** Sent as \`error.description\`. */
  readonly description: string;

  constructor(options: { status: number; errCode: JsApiErrorCode; description: string }) {
    super(\`\${options.description} (\${options.errCode})\`);
    this.status = options.status;
    this.errCode = options.errCode;
    this.description = options.description;
  }

  /** The \`error\` object of an API response. */
  toJSON(): { code: number; err_code: number; description: string } {
    return { code: this.status, err_code: this.errCode, description: this.description };
  }
}

`;

/** The whole generated module for these entries, in their order. */
export function renderErrorsModule(entries: readonly ErrorEntry[]): string {
  const codes = entries.flatMap((entry) => [
    `  /** ${entry.constant}: ${commentText(JSON.stringify(entry.description))} */`,
    `  ${namesForConstant(entry.constant).key}: ${entry.error_code},`,
  ]);
  return [
    PREAMBLE,
    `/** Every \`err_code\` by name (${entries.length} entries, in errors.json's order). */`,
    `export const JsApiErrorCode = {`,
    ...codes,
    `} as const;`,
    `export type JsApiErrorCode = (typeof JsApiErrorCode)[keyof typeof JsApiErrorCode];`,
    CLASS.trimEnd(),
    ``,
    ...entries.flatMap(renderConstructor),
  ].join('\n');
}

export interface GenPaths {
  json: string;
  out: string;
}

/** The module the JSON at `paths.json` gives. */
export function expectedModule(paths: GenPaths): string {
  return renderErrorsModule(parseErrorsJson(readFileSync(paths.json, 'utf8')));
}

/** Compares `paths.out` with what the JSON gives; `ok: false` carries the message to print. */
export function checkGenerated(paths: GenPaths): { ok: true } | { ok: false; message: string } {
  let current: string | undefined;
  try {
    current = readFileSync(paths.out, 'utf8');
  } catch {
    // A missing file is reported as stale below.
    current = undefined;
  }
  if (current === expectedModule(paths)) return { ok: true };
  const what = current === undefined ? 'is missing' : 'is stale';
  return {
    ok: false,
    message: `${relative(process.cwd(), paths.out)} ${what} (it does not match ${relative(process.cwd(), paths.json)}); run npm run gen:errors`,
  };
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      check: { type: 'boolean', default: false },
      json: { type: 'string', default: ERRORS_JSON_PATH },
      out: { type: 'string', default: ERRORS_GENERATED_PATH },
    },
    strict: true,
  });
  const paths = { json: values.json, out: values.out };
  if (values.check) {
    const result = checkGenerated(paths);
    if (!result.ok) {
      process.stderr.write(`gen-errors: ${result.message}\n`);
      return 1;
    }
    return 0;
  }
  writeFileSync(paths.out, expectedModule(paths));
  process.stdout.write(`gen-errors: wrote ${relative(process.cwd(), paths.out)}\n`);
  return 0;
}

const entryScript = process.argv[1];
if (entryScript !== undefined && import.meta.url === pathToFileURL(entryScript).href) {
  process.exitCode = main(process.argv.slice(2));
}
