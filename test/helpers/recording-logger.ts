/** A Logger for tests that keeps every record, so a test can assert what was (or was not) logged. */
import type { Logger } from '../../core/util/logger.ts';

export type LogRecord = { readonly level: string; readonly msg: string | undefined; readonly fields: Record<string, unknown> };

/** A Logger that keeps every record (with its child bindings merged in). */
export function recordingLogger(records: LogRecord[] = [], bindings: Record<string, unknown> = {}): Logger & { readonly records: LogRecord[] } {
  const write =
    (level: string) =>
    (obj: object, msg?: string): void => {
      records.push({ level, msg, fields: { ...bindings, ...(obj as Record<string, unknown>) } });
    };
  return {
    records,
    trace: write('trace'),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    fatal: write('fatal'),
    child: (more) => recordingLogger(records, { ...bindings, ...more }),
    isLevelEnabled: () => true,
  };
}
