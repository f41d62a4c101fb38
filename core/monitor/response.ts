/** What an endpoint hands back to http.ts to write. */
export type MonitorResponse =
  | {
      readonly kind: 'json';
      readonly status: number;
      readonly body: unknown;
      /** nats-server writes /healthz with `json.Marshal` (one line), everything else indented. */
      readonly isCompact?: boolean;
    }
  | {
      readonly kind: 'text';
      readonly status: number;
      readonly contentType: string;
      readonly text: string;
    };

export function jsonResponse(body: unknown, options: { status?: number; isCompact?: boolean } = {}): MonitorResponse {
  return { kind: 'json', status: options.status ?? 200, body, isCompact: options.isCompact ?? false };
}
