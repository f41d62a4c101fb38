/**
 * The client protocol's `-ERR` texts, verbatim from nats-server (NATS-SPEC.md §1.9).
 * Clients pattern-match on these strings, so they are API.
 */
export const ProtocolErrorText = {
  unknownOperation: 'Unknown Protocol Operation',
  maxControlLineExceeded: 'maximum control line exceeded',
  maxPayloadViolation: 'Maximum Payload Violation',
  authorizationViolation: 'Authorization Violation',
  authenticationTimeout: 'Authentication Timeout',
  /** Operator mode: the user JWT expired while connected (the connection closes). */
  userAuthenticationExpired: 'User Authentication Expired',
  /** Operator mode: the account JWT expired while connected (the connection closes). */
  accountAuthenticationExpired: 'Account Authentication Expired',
  staleConnection: 'Stale Connection',
  maxConnectionsExceeded: 'maximum connections exceeded',
  invalidClientProtocol: 'invalid client protocol',
  noRespondersRequiresHeaders: 'no responders requires headers support',
  invalidSubject: 'Invalid Subject',
  invalidPublishSubject: 'Invalid Publish Subject',
  maxSubscriptionsExceeded: 'maximum subscriptions exceeded',
  secureConnectionTlsRequired: 'Secure Connection - TLS Required',
} as const;
export type ProtocolErrorText = (typeof ProtocolErrorText)[keyof typeof ProtocolErrorText];

/** Stable internal codes for parse failures. */
export const ProtocolErrorCode = {
  /** Unexpected byte for the parser state: -ERR 'Unknown Protocol Operation', close. */
  unknownOperation: 'ERR_PROTO_UNKNOWN_OP',
  /** Control line longer than max_control_line: -ERR 'maximum control line exceeded', close. */
  controlLineTooLong: 'ERR_PROTO_CONTROL_LINE',
  /** PUB/HPUB size over max_payload: -ERR 'Maximum Payload Violation', close. */
  payloadTooLarge: 'ERR_PROTO_MAX_PAYLOAD',
  /** Wrong argument count, bad size, header size > total: nats-server closes without -ERR. */
  badArguments: 'ERR_PROTO_ARGS',
  /** HPUB on a connection whose CONNECT did not enable headers: nats-server closes without -ERR. */
  headersNotSupported: 'ERR_PROTO_HEADERS',
  /** The client sent `-ERR ...`: nats-server logs it and closes without -ERR. */
  clientError: 'ERR_PROTO_CLIENT_ERR',
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/**
 * A parse failure. `errText` is the text to send as `-ERR '<errText>'` before
 * closing, or undefined when nats-server closes silently. Every ProtocolError closes the connection.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;
  readonly errText: ProtocolErrorText | undefined;
  /** Parser state name when the error was found (e.g. 'OP_PU'). */
  readonly state: string;
  /** Byte offset in the chunk being parsed. */
  readonly offset: number;
  /** Escaped snippet of at most 32 bytes from the offset, for logs. */
  readonly snippet: string;

  constructor(options: {
    code: ProtocolErrorCode;
    errText: ProtocolErrorText | undefined;
    state: string;
    offset: number;
    snippet: string;
    message: string;
  }) {
    super(options.message);
    this.code = options.code;
    this.errText = options.errText;
    this.state = options.state;
    this.offset = options.offset;
    this.snippet = options.snippet;
  }
}
