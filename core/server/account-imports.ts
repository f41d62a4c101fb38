/**
 * The ways across accounts: stream and service imports (nats-server's accounts.go
 * `addStreamImport`/`addServiceImport`), built from the checked configuration as
 * forwarders, internal subscriptions that publish what they receive into the other
 * account.
 *
 * - Stream import (B imports `sub.>` of A, `prefix: p` or `to`): a subscription in A
 *   on `sub.>` republishes every message into B on the local subject (`p.sub.x`).
 * - Service import (B imports `svc.x` of A, `to: x`): a subscription in B on `x`
 *   republishes a request into A on `svc.x`, with its reply subject replaced by
 *   `_R_.<import id>.<n>` (nats-server's response subjects); a subscription in A on
 *   `_R_.<import id>.>` sends the responses back into B on the requester's reply
 *   subject: once (`response_type: Singleton`, the default) or until
 *   `response_threshold` passes (`Stream`, `Chunked`). A request nobody in A receives
 *   counts as not delivered, so a requester with no_responders gets its 503.
 *
 * A message crosses at most IMPORT_HOPS_MAX accounts: imports that form a cycle
 * (A imports from B what B imports from A) stop there instead of looping. The config
 * file's cycles are refused before (account-config.ts); this guards configs handed to
 * the server by other paths (operator mode, reload).
 */
import { randomBytes } from 'node:crypto';
import { tokenize } from '../subjects/subject.ts';
import type { Logger } from '../util/logger.ts';
import { exportFor, ServiceResponseType, type AccountExport, type AccountImport } from './account-config.ts';
import type { Account } from './accounts.ts';

/** Accounts one message may cross through imports (more means the imports form a cycle). */
export const IMPORT_HOPS_MAX = 8;
/**
 * Requests one service import remembers while their responses are due; past it the
 * oldest is forgotten (its response is dropped) and a warning is logged.
 */
export const SERVICE_RESPONSES_PENDING_MAX = 100_000;
/** nats-server's prefix of the reply subjects a service import makes in the exporting account. */
export const SERVICE_REPLY_PREFIX = '_R_.';

/** Imports in progress on the current call stack (publishing is synchronous). */
let hops = 0;

/** Runs one forward unless the message already crossed IMPORT_HOPS_MAX accounts; true when someone received it. */
function forward(run: () => number): boolean {
  if (hops >= IMPORT_HOPS_MAX) return false;
  hops++;
  try {
    return run() > 0;
  } finally {
    hops--;
  }
}

/** Wires every configured import of `accounts` (resolveAccountsConfig checked each names an existing export). */
export function wireImports(options: { accounts: ReadonlyMap<string, Account>; log: Logger }): void {
  for (const importer of options.accounts.values()) {
    for (const entry of importer.config.imports) {
      const exporter = options.accounts.get(entry.account);
      const exported = exporter === undefined ? undefined : exportFor(exporter.config, entry);
      if (exporter === undefined || exported === undefined) continue;
      if (entry.kind === 'stream') wireStreamImport({ importer, exporter, entry });
      else if (exported.kind === 'service') new ServiceImport({ importer, exporter, entry, exported, log: options.log });
    }
  }
}

/**
 * `subject` (matched by `from`) rewritten to `to`: each `*` token of `from` fills the next
 * `*` of `to`, and what `>` covered replaces the `>` of `to`. `from` and `to` have the same
 * wildcards in the same order (account-config.ts checks it).
 */
export function mapSubject(subject: string, from: string, to: string): string {
  if (from === to) return subject;
  const subjectTokens = tokenize(subject);
  const fromTokens = tokenize(from);
  const stars: string[] = [];
  let rest = '';
  for (let i = 0; i < fromTokens.length; i++) {
    if (fromTokens[i] === '*') stars.push(subjectTokens[i] ?? '');
    else if (fromTokens[i] === '>') rest = subjectTokens.slice(i).join('.');
  }
  let star = 0;
  return tokenize(to)
    .map((token) => (token === '*' ? (stars[star++] ?? '') : token === '>' ? rest : token))
    .join('.');
}

function wireStreamImport(options: { importer: Account; exporter: Account; entry: AccountImport }): void {
  const { importer, exporter, entry } = options;
  exporter.client.subscribe(entry.subject, (subject, reply, headerBytes, data) =>
    forward(() => importer.client.publish(mapSubject(subject, entry.subject, entry.localSubject), reply, headerBytes, data)),
  );
}

type PendingResponse = { readonly reply: string; readonly expiresMs: number };

class ServiceImport {
  readonly #importer: Account;
  readonly #exporter: Account;
  readonly #entry: AccountImport;
  readonly #isSingleton: boolean;
  readonly #thresholdMs: number;
  readonly #log: Logger;
  /** `_R_.<import id>.` */
  readonly #replyPrefix: string;
  /** Requests waiting for responses, by reply token, oldest first (all share one threshold, so also by expiry). */
  readonly #pending = new Map<string, PendingResponse>();
  #nextToken = 1;
  #hasWarnedFull = false;

  constructor(options: { importer: Account; exporter: Account; entry: AccountImport; exported: Extract<AccountExport, { kind: 'service' }>; log: Logger }) {
    this.#importer = options.importer;
    this.#exporter = options.exporter;
    this.#entry = options.entry;
    this.#isSingleton = options.exported.responseType === ServiceResponseType.singleton;
    this.#thresholdMs = options.exported.responseThresholdMs;
    this.#log = options.log.child({ account: options.importer.name, service_import: options.entry.subject, from_account: options.exporter.name });
    this.#replyPrefix = `${SERVICE_REPLY_PREFIX}${randomBytes(8).toString('hex')}.`;
    this.#importer.client.subscribe(this.#entry.localSubject, (subject, reply, headerBytes, data) => this.#onRequest(subject, reply, headerBytes, data));
    this.#exporter.client.subscribe(`${this.#replyPrefix}>`, (subject, reply, headerBytes, data) => this.#onResponse(subject, reply, headerBytes, data));
  }

  #onRequest(subject: string, reply: string, headerBytes: number, data: Buffer): boolean {
    const target = mapSubject(subject, this.#entry.localSubject, this.#entry.subject);
    let token = '';
    if (reply !== '') {
      const nowMs = Date.now();
      this.#expire(nowMs);
      token = (this.#nextToken++).toString(36);
      this.#pending.set(token, { reply, expiresMs: nowMs + this.#thresholdMs });
    }
    const isDelivered = forward(() => this.#exporter.client.publish(target, token === '' ? '' : `${this.#replyPrefix}${token}`, headerBytes, data));
    if (!isDelivered && token !== '') this.#pending.delete(token);
    return isDelivered;
  }

  #onResponse(subject: string, reply: string, headerBytes: number, data: Buffer): boolean {
    const token = subject.slice(this.#replyPrefix.length);
    const pending = this.#pending.get(token);
    if (pending === undefined) return false;
    if (pending.expiresMs < Date.now()) {
      this.#pending.delete(token);
      return false;
    }
    if (this.#isSingleton) this.#pending.delete(token);
    return forward(() => this.#importer.client.publish(pending.reply, reply, headerBytes, data));
  }

  /** Forgets requests past the threshold, and the oldest beyond SERVICE_RESPONSES_PENDING_MAX. */
  #expire(nowMs: number): void {
    for (const [token, pending] of this.#pending) {
      if (pending.expiresMs >= nowMs && this.#pending.size < SERVICE_RESPONSES_PENDING_MAX) break;
      if (pending.expiresMs >= nowMs && !this.#hasWarnedFull) {
        this.#hasWarnedFull = true;
        this.#log.warn({ pending_max: SERVICE_RESPONSES_PENDING_MAX }, 'service import has too many requests awaiting responses; the oldest are dropped');
      }
      this.#pending.delete(token);
    }
  }
}
