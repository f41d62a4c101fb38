/**
 * One client connection: read → parse → dispatch, and the per-connection state
 * the protocol defines (CONNECT options, subscriptions, pings). The transport
 * (TCP socket or WebSocket) is injected; this file knows no sockets.
 */
import type { OpHandler } from '../protocol/op-handler.ts';
import { Parser } from '../protocol/parser.ts';
import { ProtocolError, ProtocolErrorCode, ProtocolErrorText } from '../protocol/errors.ts';
import { isValidLiteralSubject, isValidPublishSubject, isValidSubject } from '../subjects/subject.ts';
import type { Logger } from '../util/logger.ts';
import type { Account, AccountRegistry } from './accounts.ts';
import { newNonce, type AuthContext, type AuthExpiry, type Authenticator, type AuthorizedUser } from './auth.ts';
import { Outbound, type OutboundTransport } from './outbound.ts';
import {
  ConnectionPermissions,
  isUnrestricted,
  publishViolationText,
  reloadSubscriptionViolationText,
  subscriptionViolationText,
} from './permissions.ts';
import type { ClientTlsPeer } from './listener-tls.ts';
import type { ServerOptions } from './options.ts';
import { routeMessage } from './router.ts';
import { ClosedReason, type ServerStats } from './stats.ts';
import { Subscription, type SubscriptionOwner } from './subscription.ts';

export type ConnectionKind = 'tcp' | 'websocket';

/** The CONNECT fields authentication reads (kept for re-checks after a reload). */
const CREDENTIAL_FIELDS = ['user', 'pass', 'auth_token', 'nkey', 'sig', 'jwt'] as const;

function credentialFields(fields: Record<string, unknown>): Record<string, unknown> {
  const credentials: Record<string, unknown> = {};
  for (const name of CREDENTIAL_FIELDS) if (fields[name] !== undefined) credentials[name] = fields[name];
  return credentials;
}

/** A byte transport under a connection. */
export interface ClientTransport extends OutboundTransport {
  /** Ends the transport after what was written is flushed. */
  end(): void;
  /** Closes at once, dropping unwritten bytes. */
  destroy(): void;
}

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly options: ServerOptions;
  /** The accounts; a connection starts in `$G` and moves to its user's account at CONNECT. */
  readonly accounts: AccountRegistry;
  readonly stats: ServerStats;
  /** Set when client authentication is configured. */
  readonly authenticator: Authenticator | undefined;
  /** The INFO line (with ␍␊) for this connection. */
  infoLine(connection: ClientConnection): string;
  onConnectionClosed(connection: ClientConnection): void;
}

const PONG = Buffer.from('PONG\r\n', 'latin1');
const PING = Buffer.from('PING\r\n', 'latin1');
const OK = Buffer.from('+OK\r\n', 'latin1');
/** Delay of the first server PING after CONNECT (nats-server: about 2 s), which measures the RTT. */
export const FIRST_PING_MS = 2000;
/** The longest delay setTimeout takes (2^31 - 1 ms, about 24.8 days); a later JWT expiry is reached in such steps. */
const TIMER_DELAY_MS_MAX = 2 ** 31 - 1;

export class ClientConnection implements OpHandler, SubscriptionOwner {
  readonly cid: number;
  readonly kind: ConnectionKind;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly startMs: number;
  /**
   * The TLS handshake's outcome on a TLS listener; undefined on plain ones. With `tls.verify`
   * it carries the verified client certificate's names, which `verify_and_map` maps to a user
   * (Authenticator.authenticate).
   */
  readonly tlsPeer: ClientTlsPeer | undefined;
  lastActivityMs: number;
  /** The INFO `nonce` a client signs with its nkey; undefined when no nkey user is configured. */
  readonly nonce: string | undefined;
  /** Who the client authenticated as; undefined until CONNECT, and always when no auth is configured. */
  authorizedUser: AuthorizedUser | undefined;
  /** The authorized user's permissions with this connection's caches; undefined when unrestricted (no cost on the hot path). */
  permissions: ConnectionPermissions | undefined;
  /** The account whose subjects this connection sees: `$G` until CONNECT authenticates a user of another. */
  account: Account;
  // CONNECT options (nats-server defaults when a field is absent: verbose, pedantic, echo true).
  isConnectReceived = false;
  isVerbose = false;
  isPedantic = false;
  isEcho = true;
  hasHeaders = false;
  hasNoResponders = false;
  name = '';
  lang = '';
  version = '';
  // Counters (/connz).
  inMsgs = 0;
  outMsgs = 0;
  inBytes = 0;
  outBytes = 0;
  readonly subscriptions = new Map<string, Subscription>();
  /** Set once the connection is closed. */
  closedReason: ClosedReason | undefined;
  closedMs = 0;
  /** Round trip of the last server PING, fractional milliseconds (0 until measured). */
  rttMs = 0;

  /** The server's logger; this connection's child of it is made on first use (#log). */
  readonly #parentLog: Logger;
  #log: Logger | undefined;
  readonly #host: ConnectionHost;
  readonly #transport: ClientTransport;
  readonly #parser: Parser;
  readonly #outbound: Outbound;
  #pingTimer: NodeJS.Timeout | undefined;
  #authTimer: NodeJS.Timeout | undefined;
  #writeDeadlineTimer: NodeJS.Timeout | undefined;
  #firstPingTimer: NodeJS.Timeout | undefined;
  /**
   * CONNECT's credential fields, kept (as nats-server keeps `c.opts`) so that a config reload
   * can check them against the new users (reauthorize).
   */
  #credentials: Record<string, unknown>;
  /** Closes the connection when its JWT expires (operator mode). */
  #expiryTimer: NodeJS.Timeout | undefined;
  #pingsOutstanding = 0;
  #pingSentMs = 0;

  constructor(options: {
    cid: number;
    kind: ConnectionKind;
    remoteAddress: string;
    remotePort: number;
    host: ConnectionHost;
    transport: ClientTransport;
    /** The server's logger: the connection's own child of it binds cid, kind and remote. */
    log: Logger;
    tlsPeer?: ClientTlsPeer | undefined;
    nonce?: string | undefined;
  }) {
    this.cid = options.cid;
    this.kind = options.kind;
    this.remoteAddress = options.remoteAddress;
    this.remotePort = options.remotePort;
    this.startMs = Date.now();
    this.tlsPeer = options.tlsPeer;
    this.lastActivityMs = this.startMs;
    this.#parentLog = options.log;
    this.#log = undefined;
    this.closedReason = undefined;
    // A TLS listener sent INFO before the connection existed: its nonce comes with it.
    this.nonce = options.nonce ?? (options.host.authenticator?.isNonceRequired === true ? newNonce() : undefined);
    this.authorizedUser = undefined;
    this.permissions = undefined;
    this.account = options.host.accounts.global;
    this.#host = options.host;
    this.#transport = options.transport;
    const serverOptions = options.host.options;
    this.#parser = new Parser({
      handler: this,
      controlLineBytesMax: serverOptions.controlLineBytesMax,
      payloadBytesMax: serverOptions.payloadBytesMax,
      // nats-server parity: parser.go refuses HPUB until CONNECT said headers:true.
      headersSupported: false,
    });
    this.#outbound = new Outbound({
      transport: {
        write: (buffers) => this.#transportWrite(buffers),
        bufferedBytes: () => this.#transport.bufferedBytes(),
      },
      pendingBytesMax: serverOptions.pendingBytesMax,
      onSlowConsumer: () => this.#onSlowConsumer(ClosedReason.slowConsumerPendingBytes),
    });
    this.#pingTimer = undefined;
    this.#authTimer = undefined;
    this.#writeDeadlineTimer = undefined;
    this.#firstPingTimer = undefined;
    this.#credentials = {};
    this.#expiryTimer = undefined;
  }

  /** Sends INFO (unless the TLS listener sent it before its handshake) and starts the CONNECT and ping timers. */
  start(options: { isInfoSent?: boolean } = {}): void {
    if (options.isInfoSent !== true) this.#outbound.writeRaw(this.#host.infoLine(this));
    const { authTimeoutMs, pingIntervalMs } = this.#host.options;
    this.#authTimer = setTimeout(() => this.#onAuthTimeout(), authTimeoutMs);
    this.#authTimer.unref();
    this.#pingTimer = setInterval(() => this.#onPingTimer(), pingIntervalMs);
    this.#pingTimer.unref();
  }

  /**
   * This connection's logger (`cid`, `kind`, `remote` bound), made on first use: a pino child
   * costs more than the rest of a connection's setup, and most connections never log.
   */
  get log(): Logger {
    this.#log ??= this.#parentLog.child({ cid: this.cid, kind: this.kind, remote: `${this.remoteAddress}:${this.remotePort}` });
    return this.#log;
  }

  /** A debug line, with no child logger made when debug is off. */
  #debug(fields: object, msg: string): void {
    if (this.#parentLog.isLevelEnabled('debug')) this.log.debug(fields, msg);
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  pendingBytes(): number {
    return this.isClosed ? 0 : this.#outbound.pendingBytes();
  }

  /** Bytes read from the transport. */
  onData(chunk: Buffer): void {
    if (this.isClosed) return;
    this.lastActivityMs = Date.now();
    try {
      this.#parser.parse(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#onProtocolError(err);
    }
  }

  /** The transport drained its write backlog. */
  onDrain(): void {
    if (this.#writeDeadlineTimer !== undefined) {
      clearTimeout(this.#writeDeadlineTimer);
      this.#writeDeadlineTimer = undefined;
    }
    this.#outbound.onDrain();
  }

  #transportWrite(buffers: readonly Buffer[]): boolean {
    const isWritable = this.#transport.write(buffers);
    if (!isWritable && this.#writeDeadlineTimer === undefined) {
      // nats-server parity: client.go flushOutbound, a write blocked past write_deadline is a slow consumer.
      this.#writeDeadlineTimer = setTimeout(
        () => this.#onSlowConsumer(ClosedReason.slowConsumerWriteDeadline),
        this.#host.options.writeDeadlineMs,
      );
      this.#writeDeadlineTimer.unref();
    }
    return isWritable;
  }

  #onProtocolError(err: ProtocolError): void {
    this.#debug({ code: err.code, state: err.state, offset: err.offset, snippet: err.snippet }, 'protocol error');
    if (err.errText !== undefined) this.sendErr(err.errText);
    const reason =
      err.code === ProtocolErrorCode.payloadTooLarge
        ? ClosedReason.maxPayloadExceeded
        : err.code === ProtocolErrorCode.controlLineTooLong
          ? ClosedReason.maxControlLineExceeded
          : err.code === ProtocolErrorCode.unknownOperation
            ? ClosedReason.parseError
            : ClosedReason.protocolViolation;
    this.close(reason);
  }

  #onSlowConsumer(reason: ClosedReason): void {
    if (this.isClosed) return;
    this.#host.stats.slowConsumers++;
    this.log.warn({ pending_bytes: this.#outbound.pendingBytes(), reason }, 'slow consumer detected');
    this.close(reason, { isAbort: true });
  }

  #onAuthTimeout(): void {
    this.#authTimer = undefined;
    if (this.isConnectReceived || this.isClosed) return;
    this.sendErr(ProtocolErrorText.authenticationTimeout);
    this.close(ClosedReason.authenticationTimeout);
  }

  /**
   * nats-server parity: client.go processPingTimer. A PING each interval unless the client was
   * active within it; past `ping_max` unanswered PINGs the connection is stale and closed.
   * canopy: bytes of an operation that never completes (a PUB whose payload does not arrive,
   * or arrives a byte at a time; half a control line) are not activity, and the PONG such a
   * client sends is read as payload: so it is closed within (ping_max + 1) × ping_interval of
   * the last complete operation, where nats-server could wait forever for a trickle.
   */
  #onPingTimer(): void {
    if (this.isClosed) return;
    const now = Date.now();
    const isMidOperation = !this.#parser.isBetweenOperations;
    if (now - this.lastActivityMs < this.#host.options.pingIntervalMs && this.#pingsOutstanding === 0 && !isMidOperation) return;
    if (this.#pingsOutstanding + 1 > this.#host.options.pingsOutstandingMax) {
      this.#host.stats.staleConnections++;
      if (isMidOperation) {
        this.log.warn(
          { state: this.#parser.stateName, buffered_bytes: this.#parser.bufferedBytes, pings_outstanding: this.#pingsOutstanding },
          'stale connection: an operation (a PUB payload or a control line) never completed',
        );
      }
      this.sendErr(ProtocolErrorText.staleConnection);
      this.close(ClosedReason.staleConnection);
      return;
    }
    this.#sendPing();
  }

  #sendPing(): void {
    this.#pingsOutstanding++;
    this.#pingSentMs = performance.now();
    this.#outbound.writeRaw(PING);
  }

  /** nats-server parity: client.go setFirstPingTimer, an early PING measures the RTT shown in /connz. */
  #onFirstPingTimer(): void {
    this.#firstPingTimer = undefined;
    if (!this.isClosed && this.#pingsOutstanding === 0) this.#sendPing();
  }

  /** Queues `-ERR '<text>'`. */
  sendErr(text: string): void {
    this.#outbound.writeRaw(`-ERR '${text}'\r\n`);
  }

  #ok(): void {
    if (this.isVerbose) this.#outbound.writeRaw(OK);
  }

  /** Queues one MSG/HMSG to this connection (called by the router); false when the subscribe deny list refuses the subject. */
  deliver(sid: string, subject: string, reply: string, headerBytes: number, data: Buffer): boolean {
    if (this.isClosed) return true;
    const permissions = this.permissions;
    if (permissions !== undefined) {
      // nats-server parity: client.go deliverMsg drops subjects the subscribe deny list covers (checkDenySub),
      // and remembers reply subjects for allow_responses (c.replies).
      if (permissions.isDeliveryDenied(subject)) return false;
      if (reply.length > 0) permissions.onDeliveredReply(reply);
    }
    this.#outbound.writeMsg(subject, sid, reply, headerBytes, data);
    this.outMsgs++;
    this.outBytes += data.length;
    const stats = this.#host.stats;
    stats.outMsgs++;
    stats.outBytes += data.length;
    return true;
  }

  // --- OpHandler -------------------------------------------------------------------------------

  onConnect(json: Buffer): void {
    if (this.isClosed) return;
    let connect: unknown;
    try {
      connect = JSON.parse(json.toString('utf8'));
    } catch {
      // nats-server parity: client.go processConnect returns the JSON error; the connection closes without -ERR.
      this.close(ClosedReason.protocolViolation);
      return;
    }
    if (connect === null || typeof connect !== 'object' || Array.isArray(connect)) {
      this.close(ClosedReason.protocolViolation);
      return;
    }
    const fields = connect as Record<string, unknown>;
    // nats-server parity: client.go processConnect checks auth before the protocol field.
    if (!this.#authenticate(fields)) return;
    const protocol = fields['protocol'];
    if (protocol !== undefined && protocol !== 0 && protocol !== 1) {
      this.sendErr(ProtocolErrorText.invalidClientProtocol);
      this.close(ClosedReason.protocolViolation);
      return;
    }
    this.isVerbose = fields['verbose'] === undefined ? true : fields['verbose'] === true;
    this.isPedantic = fields['pedantic'] === undefined ? true : fields['pedantic'] === true;
    this.isEcho = fields['echo'] === undefined ? true : fields['echo'] === true;
    this.hasHeaders = fields['headers'] === true;
    this.hasNoResponders = fields['no_responders'] === true;
    this.#parser.setHeadersSupported(this.hasHeaders);
    if (this.hasNoResponders && !this.hasHeaders) {
      this.sendErr(ProtocolErrorText.noRespondersRequiresHeaders);
      this.close(ClosedReason.protocolViolation);
      return;
    }
    this.name = typeof fields['name'] === 'string' ? fields['name'] : '';
    this.lang = typeof fields['lang'] === 'string' ? fields['lang'] : '';
    this.version = typeof fields['version'] === 'string' ? fields['version'] : '';
    if (!this.isConnectReceived) {
      this.#firstPingTimer = setTimeout(() => this.#onFirstPingTimer(), Math.min(FIRST_PING_MS, this.#host.options.pingIntervalMs));
      this.#firstPingTimer.unref();
    }
    this.isConnectReceived = true;
    if (this.#authTimer !== undefined) {
      clearTimeout(this.#authTimer);
      this.#authTimer = undefined;
    }
    this.#debug({ name: this.name, lang: this.lang, version: this.version }, 'client connected');
    this.#ok();
  }

  /** Checks CONNECT's credentials when auth is configured; on failure sends the violation and closes. */
  #authenticate(fields: Record<string, unknown>): boolean {
    const authenticator = this.#host.authenticator;
    if (authenticator === undefined) return true;
    this.#credentials = credentialFields(fields);
    const result = authenticator.authenticate(this.#credentials, this.#authContext());
    if (result.isAuthorized) {
      this.#setAuthorizedUser(result.user);
      // Operator mode registers a JWT user's account on first use, with JetStream (as nats-server enables it per account JWT).
      this.#joinAccount(this.#accountOf(result.user));
      return true;
    }
    this.#authViolation(result);
    return false;
  }

  /** The account `user` belongs to (accounts.ts); the global one when it names none. */
  #accountOf(user: AuthorizedUser): Account {
    return this.#host.accounts.resolve(user.account, { isJetStreamEnabled: user.kind === 'jwt' });
  }

  /** What authentication reads besides CONNECT: the INFO nonce, the TLS handshake, and (JWT `src`, connection types) the client. */
  #authContext(): AuthContext {
    const client = { remoteAddress: this.remoteAddress, connectionType: this.kind === 'websocket' ? 'WEBSOCKET' : 'STANDARD' } as const;
    return { nonce: this.nonce, tlsPeer: this.tlsPeer, client };
  }

  /** Takes `user`'s permissions and (a JWT user) arms its expiry; a new CONNECT or a reload replaces both. */
  #setAuthorizedUser(user: AuthorizedUser | undefined): void {
    this.authorizedUser = user;
    const permissions = user?.permissions;
    this.permissions = permissions === undefined || isUnrestricted(permissions) ? undefined : new ConnectionPermissions(permissions);
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (user?.expiry !== undefined) this.#armExpiry(user.expiry);
  }

  #authViolation(result: { reason: string; user: string | undefined }): void {
    this.#host.stats.authorizationViolations++;
    this.log.warn({ user: result.user, reason: result.reason }, 'authorization violation');
    // nats-server parity: client.go authViolation sends the -ERR, then closes (Authentication Failure).
    this.sendErr(ProtocolErrorText.authorizationViolation);
    this.close(ClosedReason.authenticationViolation);
  }

  /**
   * After a config reload (nats-server reload.go reloadAuthorization): checks the CONNECT this
   * connection sent against the new users. No longer valid: `-ERR 'Authorization Violation'`
   * and closed. Still valid: it takes the user's new permissions, and each subscription they
   * no longer allow is removed with `Permissions Violation for Subscription to "<subject>"
   * (sid "<sid>")` (client.go processSubsOnConfigReload). False when it was closed.
   */
  reauthorize(authenticator: Authenticator | undefined): boolean {
    if (this.isClosed || !this.isConnectReceived) return !this.isClosed;
    if (authenticator === undefined) {
      this.#setAuthorizedUser(undefined);
      return true;
    }
    const result = authenticator.authenticate(this.#credentials, this.#authContext());
    if (!result.isAuthorized) {
      this.#authViolation(result);
      return false;
    }
    if (this.#accountOf(result.user) !== this.account) {
      // nats-server parity: reload.go closes a client whose user moved to another account (Client Closed, no -ERR).
      this.log.info({ user: result.user.name, account: this.account.name }, 'client closed: its user moved to another account');
      this.close(ClosedReason.clientClosed);
      return false;
    }
    this.#setAuthorizedUser(result.user);
    const permissions = this.permissions;
    if (permissions === undefined) return true;
    for (const subscription of [...this.subscriptions.values()]) {
      if (permissions.canSubscribe(subscription.subject, subscription.queue)) continue;
      this.removeSubscription(subscription);
      this.sendErr(reloadSubscriptionViolationText(subscription.subject, subscription.sid));
      this.log.info({ subject: subscription.subject, sid: subscription.sid, user: result.user.name }, 'subscription removed: no longer permitted');
    }
    this.flush();
    return true;
  }

  /** Moves the connection (and any subscriptions, after a second CONNECT) into `account`. */
  #joinAccount(account: Account): void {
    if (account === this.account) return;
    for (const subscription of this.subscriptions.values()) {
      this.account.sublist.remove(subscription);
      account.sublist.insert(subscription);
    }
    this.account = account;
  }

  /**
   * nats-server parity: parser.go, with auth configured anything before CONNECT is an
   * Authorization Violation, unless `no_auth_user` is set (then the client is that user).
   * True when the operation may go on.
   */
  #isAuthorizedBeforeConnect(): boolean {
    const authenticator = this.#host.authenticator;
    if (authenticator === undefined || this.authorizedUser !== undefined) return true;
    if (authenticator.options.noAuthUser !== undefined) return this.#authenticate({});
    this.#host.stats.authorizationViolations++;
    this.log.warn({ user: undefined, reason: 'an operation before CONNECT' }, 'authorization violation');
    this.sendErr(ProtocolErrorText.authorizationViolation);
    this.close(ClosedReason.authenticationViolation);
    return false;
  }

  /** nats-server parity: client.go authExpired sends the -ERR and closes (Authentication Expired) when the JWT's exp passes. */
  #armExpiry(expiry: AuthExpiry): void {
    const delayMs = Math.min(Math.max(expiry.atMs - Date.now(), 0), TIMER_DELAY_MS_MAX);
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = undefined;
      if (Date.now() < expiry.atMs) {
        this.#armExpiry(expiry);
        return;
      }
      this.#debug({ user: this.authorizedUser?.name }, 'authorization expired');
      this.sendErr(expiry.errText);
      this.close(ClosedReason.authenticationExpired);
    }, delayMs);
    this.#expiryTimer.unref();
  }

  onPub(subject: string, reply: string, headerBytes: number, data: Buffer): void {
    // The rest of a chunk can still be parsed after an op closed the connection: ignore it.
    if (this.isClosed || !this.#isAuthorizedBeforeConnect()) return;
    this.inMsgs++;
    this.inBytes += data.length;
    const stats = this.#host.stats;
    stats.inMsgs++;
    stats.inBytes += data.length;
    if (this.isPedantic ? !isValidLiteralSubject(subject) : !isValidPublishSubject(subject)) {
      // nats-server parity: client.go processPub sends the -ERR and still routes the message.
      this.sendErr(ProtocolErrorText.invalidPublishSubject);
    }
    if (this.permissions !== undefined && !this.permissions.canPublish(subject)) {
      // nats-server parity: client.go processInboundClientMsg, the message is dropped, the connection stays open, no +OK.
      this.#debug({ subject }, 'publish permissions violation');
      this.sendErr(publishViolationText(subject));
      return;
    }
    routeMessage(this.account.sublist, this, subject, reply, headerBytes, data);
    this.#ok();
  }

  onSub(subject: string, queue: string, sid: string): void {
    if (this.isClosed || !this.#isAuthorizedBeforeConnect()) return;
    // nats-server parity: client.go processSub validates the subject only; any queue name is accepted.
    if (!isValidSubject(subject)) {
      this.sendErr(ProtocolErrorText.invalidSubject);
      return;
    }
    if (this.permissions !== undefined && !this.permissions.canSubscribe(subject, queue)) {
      // nats-server parity: client.go processSub, no subscription is made and the connection stays open.
      this.#debug({ subject, queue }, 'subscription permissions violation');
      this.sendErr(subscriptionViolationText(subject, queue));
      return;
    }
    const max = this.#host.options.subscriptionsMax;
    if (max > 0 && this.subscriptions.size >= max) {
      this.sendErr(ProtocolErrorText.maxSubscriptionsExceeded);
      return;
    }
    // nats-server parity: client.go processSub ignores a SUB that reuses a live sid.
    if (!this.subscriptions.has(sid)) {
      const subscription = new Subscription({ subject, queue, sid, connection: this });
      this.subscriptions.set(sid, subscription);
      this.account.sublist.insert(subscription);
    }
    this.#ok();
  }

  onUnsub(sid: string, maxMsgs: number): void {
    if (this.isClosed || !this.#isAuthorizedBeforeConnect()) return;
    const subscription = this.subscriptions.get(sid);
    if (subscription !== undefined) {
      if (maxMsgs > 0 && subscription.deliveredMsgs < maxMsgs) subscription.maxMsgs = maxMsgs;
      else this.removeSubscription(subscription);
    }
    this.#ok();
  }

  onPing(): void {
    if (this.isClosed) return;
    this.#outbound.writeRaw(PONG);
  }

  onPong(): void {
    if (this.#pingsOutstanding > 0) this.rttMs = performance.now() - this.#pingSentMs;
    this.#pingsOutstanding = 0;
  }

  // --- lifecycle -------------------------------------------------------------------------------

  removeSubscription(subscription: Subscription): void {
    if (this.subscriptions.get(subscription.sid) !== subscription) return;
    this.subscriptions.delete(subscription.sid);
    this.account.sublist.remove(subscription);
  }

  /** Flushes what is queued now (used before a graceful close). */
  flush(): void {
    if (!this.isClosed) this.#outbound.flush();
  }

  /**
   * Closes the connection: subscriptions leave the sublist at once; queued
   * bytes (an -ERR) are flushed unless `isAbort`.
   */
  close(reason: ClosedReason, options: { isAbort?: boolean } = {}): void {
    if (this.isClosed) return;
    if (!options.isAbort) this.#outbound.flush();
    this.closedReason = reason;
    this.closedMs = Date.now();
    this.#outbound.close();
    for (const timer of [this.#pingTimer, this.#authTimer, this.#writeDeadlineTimer, this.#firstPingTimer, this.#expiryTimer]) {
      if (timer !== undefined) clearTimeout(timer);
    }
    this.#pingTimer = undefined;
    this.#authTimer = undefined;
    this.#writeDeadlineTimer = undefined;
    this.#firstPingTimer = undefined;
    this.#expiryTimer = undefined;
    for (const subscription of this.subscriptions.values()) this.account.sublist.remove(subscription);
    if (options.isAbort) this.#transport.destroy();
    else this.#transport.end();
    this.#debug({ reason }, 'client closed');
    this.#host.onConnectionClosed(this);
  }
}
