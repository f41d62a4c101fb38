/**
 * `canopy status`: the links of a leaf or a hub, read from its monitoring port (/leafz), as a
 * table; `--watch` redraws it every interval (a live terminal view). Exit 1 when the monitor
 * cannot be reached.
 */
import type { CommandModule } from 'yargs';
import { ConfigError } from '../../core/server/options.ts';

/** Shortest --watch interval. */
const WATCH_INTERVAL_MS_MIN = 200;

type StreamRow = Record<string, unknown> & { stream: string };
type Leafz = {
  role?: string;
  links?: string;
  leaf?: string;
  link?: Record<string, unknown> & { streams?: StreamRow[]; downstream?: StreamRow[] };
  leafs?: (Record<string, unknown> & { leaf: string; streams?: StreamRow[]; downstream?: StreamRow[] })[];
};

function age(nowMs: number, atMs: unknown): string {
  if (typeof atMs !== 'number') return '-';
  const seconds = Math.max(0, (nowMs - atMs) / 1000);
  return seconds < 120 ? `${seconds.toFixed(1)}s` : `${Math.round(seconds / 60)}m`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The text `canopy status` prints for one /leafz document. */
export function renderStatus(leafz: Leafz, nowMs: number): string {
  if (leafz.role === 'leaf' && leafz.link !== undefined) {
    const link = leafz.link;
    const head = `leaf ${leafz.leaf ?? ''}: link ${String(link['state'])} to ${String(link['hubUrl'] ?? '-')}, ` +
      `reconnects ${String(link['reconnects'] ?? 0)}${link['stalled'] === true ? ', STALLED' : ''}`;
    const rows = (link.streams ?? []).map((s) => [
      s.stream, String(s['state'] ?? ''), String(s['ackedSeq'] ?? '-'), String(s['lastSeq'] ?? '-'),
      String(s['backlogMsgs'] ?? 0), String(s['backlogBytes'] ?? 0), age(nowMs, s['lastAckMs']), s['stalled'] === true ? 'yes' : '',
      // Kept until the hub has them (retention "hub"); refused publishes when only unsynced data could have made room.
      String(s['heldMsgs'] ?? 0), String(s['refusedPublishes'] ?? 0),
    ]);
    const down = (link.downstream ?? []).map((s) => [s.stream, String(s['cursor'] ?? '-'), String(s['gaps'] ?? 0), String(s['incarnationChanges'] ?? 0), age(nowMs, s['lastBatchMs'])]);
    const downTable = down.length === 0 ? '' : `\ndownstream (hub streams)\n${table(['stream', 'cursor', 'gaps', 'incarnations', 'last batch'], down)}`;
    return `${head}\n${table(['stream', 'state', 'acked', 'last', 'backlog', 'bytes', 'last ack', 'stalled', 'held', 'refused'], rows)}${downTable}`;
  }
  if (leafz.role === 'hub') {
    const rows = (leafz.leafs ?? []).flatMap((leaf) =>
      (leaf.streams?.length ? leaf.streams : [{ stream: '-' } as StreamRow]).map((s) => [
        leaf.leaf, leaf['connected'] === true ? 'up' : 'down', s.stream, String(s['cursor'] ?? '-'), String(s['gaps'] ?? 0),
        String(s['incarnationChanges'] ?? 0), age(nowMs, s['lastBatchMs']),
      ]),
    );
    const down = (leafz.leafs ?? []).flatMap((leaf) =>
      (leaf.downstream ?? []).map((s) => [leaf.leaf, s.stream, String(s['state'] ?? ''), String(s['ackedSeq'] ?? '-'), String(s['backlogMsgs'] ?? 0), age(nowMs, s['lastAckMs'])]),
    );
    const downTable = down.length === 0 ? '' : `\ndownstream (hub streams to leaves)\n${table(['leaf', 'stream', 'state', 'acked', 'backlog', 'last ack'], down)}`;
    return `hub: ${leafz.leafs?.length ?? 0} leaves\n${table(['leaf', 'link', 'stream', 'cursor', 'gaps', 'incarnations', 'last batch'], rows)}${downTable}`;
  }
  return 'no links (a plain server: run canopy leaf or canopy hub)';
}

export const statusCommand: CommandModule = {
  command: 'status',
  describe: 'show the links of a leaf or hub (its /leafz), once or live with --watch',
  builder: (yargs) =>
    yargs
      .option('monitor', { alias: 'm', type: 'string', default: 'http://127.0.0.1:8222', describe: 'monitoring URL of the leaf or hub' })
      .option('watch', { type: 'string', describe: 'redraw every interval, e.g. 1s' }),
  handler: async (argv) => {
    const url = `${String(argv['monitor']).replace(/\/+$/, '')}/leafz`;
    const watch = argv['watch'] === undefined ? undefined : Number.parseFloat(String(argv['watch'])) * (String(argv['watch']).endsWith('ms') ? 1 : 1000);
    if (watch !== undefined && !(watch >= WATCH_INTERVAL_MS_MIN)) throw new ConfigError('watch', `must be an interval of at least ${WATCH_INTERVAL_MS_MIN} ms such as 1s`);
    for (;;) {
      let text: string;
      try {
        const response = await fetch(url);
        text = renderStatus((await response.json()) as Leafz, Date.now());
      } catch (err) {
        process.stderr.write(`canopy status: cannot read ${url}: ${(err as Error).message}\n`);
        process.exit(1);
      }
      process.stdout.write(watch === undefined ? `${text}\n` : `\x1b[2J\x1b[H${new Date().toISOString()}\n${text}\n`);
      if (watch === undefined) return;
      await new Promise((resolve) => setTimeout(resolve, watch));
    }
  },
};
