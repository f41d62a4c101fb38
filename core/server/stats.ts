/** Server-wide counters, read by /varz and /metrics. Plain fields: incremented on the hot path. */
export class ServerStats {
  inMsgs = 0;
  outMsgs = 0;
  inBytes = 0;
  outBytes = 0;
  slowConsumers = 0;
  staleConnections = 0;
  totalConnections = 0;
  /** Connections refused because max_connections was reached. */
  rejectedConnections = 0;
  /** Client and WebSocket TLS handshakes that failed (no or wrong client certificate, plain text, timeout). */
  tlsHandshakeFailures = 0;
  /** CONNECTs refused with -ERR 'Authorization Violation'. */
  authorizationViolations = 0;
}

/**
 * Why a connection closed: nats-server's ClosedState strings (server/client.go),
 * shown as `reason` in /connz?state=closed.
 */
export const ClosedReason = {
  clientClosed: 'Client Closed',
  authenticationTimeout: 'Authentication Timeout',
  authenticationViolation: 'Authentication Failure',
  authenticationExpired: 'Authentication Expired',
  slowConsumerPendingBytes: 'Slow Consumer (Pending Bytes)',
  slowConsumerWriteDeadline: 'Slow Consumer (Write Deadline)',
  staleConnection: 'Stale Connection',
  protocolViolation: 'Protocol Violation',
  maxPayloadExceeded: 'Maximum Message Payload Exceeded',
  maxControlLineExceeded: 'Maximum Control Line Exceeded',
  maxConnectionsExceeded: 'Maximum Connections Exceeded',
  parseError: 'Parse Error',
  readError: 'Read Error',
  writeError: 'Write Error',
  serverShutdown: 'Server Shutdown',
} as const;
export type ClosedReason = (typeof ClosedReason)[keyof typeof ClosedReason];
