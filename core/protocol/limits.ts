/** Client protocol limits with nats-server's defaults (NATS-SPEC.md §1.8). */
/** NATS `max_payload`: the largest PUB/HPUB #bytes accepted. */
export const PAYLOAD_BYTES_MAX = 1024 * 1024;
/** NATS `max_control_line`: the longest control line (op + args) accepted. */
export const CONTROL_LINE_BYTES_MAX = 4096;
/** NATS `max_pending`: outbound bytes buffered for one connection before it is a slow consumer. */
export const PENDING_BYTES_MAX = 64 * 1024 * 1024;
/** NATS `max_connections`. */
export const CONNECTIONS_MAX = 64 * 1024;
/** NATS `max_subscriptions` per connection (0 = unlimited). */
export const SUBSCRIPTIONS_MAX = 0;
/** NATS `ping_interval`. */
export const PING_INTERVAL_MS = 2 * 60 * 1000;
/** NATS `ping_max`: outstanding pings before the connection is stale. */
export const PINGS_OUTSTANDING_MAX = 2;
/** NATS `auth_timeout`. */
export const AUTH_TIMEOUT_MS = 2000;
