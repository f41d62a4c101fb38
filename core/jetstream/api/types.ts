/**
 * JetStream API wire types (NATS-SPEC.md §2), snake_case as on the wire.
 * Durations are int64 nanoseconds (numbers here: nanosecond durations up to ~104
 * days fit exactly in a double; longer ones lose sub-microsecond precision only).
 */

export const RetentionPolicy = ['limits', 'interest', 'workqueue'] as const;
export type RetentionPolicy = (typeof RetentionPolicy)[number];
export const DiscardPolicy = ['old', 'new'] as const;
export type DiscardPolicy = (typeof DiscardPolicy)[number];
export const StorageType = ['file', 'memory'] as const;
export type StorageType = (typeof StorageType)[number];

/** StreamSource (mirror and sources). Accepted and validated; syncing them comes with the link work. */
export type StreamSource = {
  name: string;
  opt_start_seq?: number;
  opt_start_time?: string;
  filter_subject?: string;
  subject_transforms?: { src: string; dest: string }[];
  external?: { api: string; deliver?: string };
  domain?: string;
};

/** StreamConfig, as filled in by the server (every field the response carries). */
export type StreamConfig = {
  name: string;
  description?: string;
  subjects?: string[];
  retention: RetentionPolicy;
  max_consumers: number;
  max_msgs: number;
  max_bytes: number;
  max_age: number;
  max_msgs_per_subject: number;
  max_msg_size: number;
  discard: DiscardPolicy;
  storage: StorageType;
  num_replicas: number;
  no_ack?: boolean;
  duplicate_window: number;
  placement?: { cluster?: string; tags?: string[] };
  mirror?: StreamSource;
  sources?: StreamSource[];
  compression: 'none' | 's2';
  first_seq?: number;
  subject_transform?: { src: string; dest: string };
  republish?: { src: string; dest: string; headers_only?: boolean };
  allow_direct: boolean;
  mirror_direct: boolean;
  discard_new_per_subject?: boolean;
  sealed: boolean;
  deny_delete: boolean;
  deny_purge: boolean;
  allow_rollup_hdrs: boolean;
  consumer_limits: { inactive_threshold?: number; max_ack_pending?: number };
  metadata?: Record<string, string>;
};
