/**
 * `canopy stream add|ls|info|rm|purge|get`: JetStream stream management in the
 * spirit of the `nats` CLI, on the official @nats-io/jetstream client, so it
 * works against canopy and nats-server alike.
 *
 * This file also holds what the JetStream commands share (consumer-commands.ts
 * and kv-commands.ts import it): flag readers for durations, sizes, names and
 * choices, the connect-run-close wrapper, the one-line rendering of API errors,
 * and the small formatters of the summaries.
 *
 * Output: results go to stdout, notices to stderr. Exit codes: 0 ok, 1 a
 * runtime or API failure (one line with the server's description and
 * err_code), 2 a bad flag or a refused destructive action (a ConfigError).
 */
import {
  jetstreamManager,
  JetStreamApiError,
  type JetStreamManager,
  type PurgeOpts,
  type StoredMsg,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError, parseSizeBytes } from '../../core/server/options.ts';
import { parseDurationMs } from '../../core/util/duration.ts';
import { addConnectionFlags, CliError, connectClient, describeError, isNoRespondersError, parseClientSecurity, parseServerUrls, readIntegerFlag, readStringFlag } from './client-connection.ts';

/** JetStream API limits are int64; a JS number is exact up to 2^53. */
export const JS_INTEGER_MAX = Number.MAX_SAFE_INTEGER;
export const REPLICAS_MAX = 5;
/** nats-server: stream, consumer and durable names are at most this long. */
const NAME_CHARS_MAX = 255;
const NANOS_PER_MS = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Shared by the JetStream commands: errors

/**
 * A usage error whose message is the whole line (a ConfigError, so exit 2),
 * for refusals such as a missing --force, which are not about one bad value.
 */
export class UsageError extends ConfigError {
  constructor(key: string, message: string) {
    super(key, message);
    this.message = message;
  }
}

/**
 * Turns a failure of a JetStream call into one line: the server's description
 * and codes for API errors, a plain reason otherwise. `action` says what failed.
 */
export function jetStreamError(err: unknown, action: string): Error {
  if (err instanceof CliError || err instanceof ConfigError) return err;
  if (err instanceof JetStreamApiError) {
    const api = err.apiError();
    return new CliError('ERR_JS_API', `${action}: ${api.description} (code ${api.code}, err_code ${api.err_code})`, { cause: err });
  }
  if (err instanceof Error && err.name === 'JetStreamNotEnabled') {
    return new CliError('ERR_JS_DISABLED', `${action}: JetStream is not enabled on the server (nothing answers on $JS.API)`, { cause: err });
  }
  if (isNoRespondersError(err)) {
    return new CliError('ERR_NO_RESPONDERS', `${action}: no responders (no stream captures that subject, or JetStream is off)`, { cause: err });
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || (err.cause instanceof Error && err.cause.name === 'TimeoutError'))) {
    return new CliError('ERR_TIMEOUT', `${action}: the server did not answer in time`, { cause: err });
  }
  return new CliError('ERR_JS', `${action}: ${describeError(err)}`, { cause: err });
}

/** Connects, makes a JetStreamManager (which checks that JetStream answers), runs `body`, closes. */
export async function withJetStream<T>(
  argv: Record<string, unknown>,
  clientName: string,
  body: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const servers = parseServerUrls(argv['server']);
  const nc = await connectClient({ servers, security: parseClientSecurity(argv), name: clientName });
  try {
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc);
    } catch (err) {
      throw jetStreamError(err, `cannot use JetStream on ${servers.join(',')}`);
    }
    return await body(jsm, nc);
  } finally {
    await closeQuietly(nc);
  }
}

async function closeQuietly(nc: NatsConnection): Promise<void> {
  try {
    await nc.close();
  } catch {
    // The command already finished or failed; a close error adds nothing the user can act on.
  }
}

// ---------------------------------------------------------------------------------------------
// Shared by the JetStream commands: flags and arguments

/** A stream, consumer or durable name as nats-server accepts it (ConfigError otherwise). */
export function readNameArgument(argv: Record<string, unknown>, key: string, what: string): string {
  const value = argv[key];
  const name = value === undefined ? '' : String(value);
  if (name === '') throw new ConfigError(key, `name the ${what}`);
  if (name.length > NAME_CHARS_MAX) throw new ConfigError(key, `a ${what} name has at most ${NAME_CHARS_MAX} characters`);
  if (/[\s.*>\\/]/.test(name)) {
    throw new ConfigError(key, `${JSON.stringify(name)}: a ${what} name cannot contain whitespace, ".", "*", ">", "\\" or "/"`);
  }
  return name;
}

/** An optional flag limited to `choices` (checked here, not by yargs, so the error stays one line). */
export function readChoiceFlag<T extends string>(argv: Record<string, unknown>, key: string, choices: readonly T[]): T | undefined {
  const text = readStringFlag(argv, key);
  if (text === undefined) return undefined;
  const choice = choices.find((c) => c === text.toLowerCase());
  if (choice === undefined) throw new ConfigError(key, `must be one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
  return choice;
}

/** An optional integer flag. */
export function readOptionalIntegerFlag(argv: Record<string, unknown>, key: string, range: { min: number; max: number }): number | undefined {
  return argv[key] === undefined ? undefined : readIntegerFlag(argv, key, range);
}

/** An optional duration ("1h", "30s", "500ms", "1h30m"; a bare number is seconds), in milliseconds. */
export function readDurationFlagMs(argv: Record<string, unknown>, key: string, options: { minMs?: number } = {}): number | undefined {
  const text = readStringFlag(argv, key);
  if (text === undefined) return undefined;
  const ms = parseDurationMs(text);
  if (ms === undefined) throw new ConfigError(key, `must be a duration such as 1h, 30s or 500ms, got ${JSON.stringify(text)}`);
  if (options.minMs !== undefined && ms < options.minMs) throw new ConfigError(key, `must be at least ${options.minMs} ms, got ${JSON.stringify(text)}`);
  return ms;
}

/** The same, in nanoseconds (the JetStream API's unit). */
export function readDurationFlagNs(argv: Record<string, unknown>, key: string, options: { minMs?: number } = {}): number | undefined {
  const ms = readDurationFlagMs(argv, key, options);
  return ms === undefined ? undefined : Math.round(ms * NANOS_PER_MS);
}

/** An optional size ("1MB", "512k", "1048576"), in bytes. */
export function readSizeFlag(argv: Record<string, unknown>, key: string): number | undefined {
  const text = readStringFlag(argv, key);
  if (text === undefined) return undefined;
  const bytes = parseSizeBytes(text);
  if (bytes === undefined || bytes < 1) throw new ConfigError(key, `must be a size such as 1048576, 512KB or 1MB, got ${JSON.stringify(text)}`);
  return bytes;
}

/** Refuses a destructive action unless --force was given. */
export function requireForce(argv: Record<string, unknown>, what: string): void {
  if (argv['force'] !== true) throw new UsageError('force', `refusing to ${what} without --force`);
}

export function addForceFlag<T>(yargs: Argv<T>, describe: string): Argv<T> {
  return yargs.option('force', { alias: 'f', type: 'boolean', describe }) as Argv<T>;
}

export function addJsonFlag<T>(yargs: Argv<T>, describe: string): Argv<T> {
  return yargs.option('json', { type: 'boolean', describe }) as Argv<T>;
}

// ---------------------------------------------------------------------------------------------
// Shared by the JetStream commands: formatting

/** -1 (or absent) is "unlimited" in JetStream limits. */
export function formatLimit(value: number | undefined, format: (n: number) => string = formatCount): string {
  return value === undefined || value < 0 ? 'unlimited' : format(value);
}

export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Nanoseconds as Go prints a duration, roughly: 2m0s, 1h30m0s, 500ms, 1.5s. */
export function formatNanos(nanos: number): string {
  if (nanos <= 0) return '0s';
  const ms = nanos / NANOS_PER_MS;
  if (ms < 1000) return `${Number(ms.toFixed(3))}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = Number(((ms % 60_000) / 1000).toFixed(3));
  return `${hours > 0 ? `${hours}h` : ''}${hours > 0 || minutes > 0 ? `${minutes}m` : ''}${seconds}s`;
}

/** The zero time of the JetStream API means "never". */
export function formatTime(rfc3339: string | undefined): string {
  return rfc3339 === undefined || rfc3339.startsWith('0001-01-01') ? 'never' : rfc3339;
}

/** Left-aligned columns, two spaces apart; the first row is the header. */
export function formatColumns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

/** "  Label: value" lines, labels padded to one width. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `  ${`${label}:`.padEnd(width + 1)} ${value}`).join('\n') + '\n';
}

/** Header lines as "Key: value", one per value. */
export function formatHeaders(headers: MsgHdrs | undefined): string {
  if (headers === undefined) return '';
  let text = '';
  for (const key of headers.keys()) for (const value of headers.values(key)) text += `${key}: ${value}\n`;
  return text;
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The payload as it is, followed by a newline unless it ends with one. */
export function payloadWithNewline(data: Uint8Array): Buffer {
  const endsWithNewline = data.length > 0 && data[data.length - 1] === 0x0a;
  return Buffer.concat([data, Buffer.from(endsWithNewline ? '' : '\n')]);
}

// ---------------------------------------------------------------------------------------------
// canopy stream add

const RETENTIONS = ['limits', 'interest', 'workqueue'] as const;
const STORAGES = ['file', 'memory'] as const;
const DISCARDS = ['old', 'new'] as const;
/** nats-server: max_age and duplicate_window, when set, are at least 100 ms. */
const STREAM_DURATION_MIN_MS = 100;

function readSubjectsFlag(argv: Record<string, unknown>): string[] | undefined {
  const raw = argv['subjects'];
  if (raw === undefined) return undefined;
  const subjects = (Array.isArray(raw) ? raw : [raw])
    .flatMap((value) => String(value).split(','))
    .map((subject) => subject.trim())
    .filter((subject) => subject !== '');
  if (subjects.length === 0) throw new ConfigError('subjects', 'name at least one subject, e.g. --subjects "orders.>"');
  return subjects;
}

/** The StreamConfig the flags describe; unset flags are left to the server's defaults. */
export function streamConfigFromFlags(argv: Record<string, unknown>): Partial<StreamConfig> & { name: string } {
  const config: Partial<StreamConfig> & { name: string } = { name: readNameArgument(argv, 'name', 'stream') };
  const subjects = readSubjectsFlag(argv);
  if (subjects !== undefined) config.subjects = subjects;
  const retention = readChoiceFlag(argv, 'retention', RETENTIONS);
  if (retention !== undefined) config.retention = retention;
  const storage = readChoiceFlag(argv, 'storage', STORAGES);
  if (storage !== undefined) config.storage = storage;
  const discard = readChoiceFlag(argv, 'discard', DISCARDS);
  if (discard !== undefined) config.discard = discard;
  const maxMsgs = readOptionalIntegerFlag(argv, 'max-msgs', { min: -1, max: JS_INTEGER_MAX });
  if (maxMsgs !== undefined) config.max_msgs = maxMsgs;
  const maxPerSubject = readOptionalIntegerFlag(argv, 'max-msgs-per-subject', { min: -1, max: JS_INTEGER_MAX });
  if (maxPerSubject !== undefined) config.max_msgs_per_subject = maxPerSubject;
  const maxBytes = readSizeFlag(argv, 'max-bytes');
  if (maxBytes !== undefined) config.max_bytes = maxBytes;
  const maxMsgSize = readSizeFlag(argv, 'max-msg-size');
  if (maxMsgSize !== undefined) config.max_msg_size = maxMsgSize;
  const maxAge = readDurationFlagNs(argv, 'max-age', { minMs: STREAM_DURATION_MIN_MS });
  if (maxAge !== undefined) config.max_age = maxAge;
  const dupeWindow = readDurationFlagNs(argv, 'dupe-window', { minMs: STREAM_DURATION_MIN_MS });
  if (dupeWindow !== undefined) config.duplicate_window = dupeWindow;
  const replicas = readOptionalIntegerFlag(argv, 'replicas', { min: 1, max: REPLICAS_MAX });
  if (replicas !== undefined) config.num_replicas = replicas;
  if (argv['allow-direct'] === true) config.allow_direct = true;
  if (argv['allow-rollup'] === true) config.allow_rollup_hdrs = true;
  if (argv['deny-delete'] === true) config.deny_delete = true;
  if (argv['deny-purge'] === true) config.deny_purge = true;
  if (config.allow_rollup_hdrs === true && config.deny_purge === true) {
    throw new ConfigError('allow-rollup', 'roll-ups purge messages, so --allow-rollup and --deny-purge exclude each other');
  }
  return config;
}

/** The readable summary of `stream info` (and of `stream add`). */
export function formatStreamInfo(info: StreamInfo): string {
  const { config, state } = info;
  const configuration: [string, string][] = [
    ['Subjects', (config.subjects ?? []).join(', ') || '(none)'],
    ['Retention', config.retention],
    ['Storage', config.storage],
    ['Replicas', String(config.num_replicas)],
    ['Discard policy', config.discard],
    ['Maximum messages', formatLimit(config.max_msgs)],
    ['Maximum messages per subject', formatLimit(config.max_msgs_per_subject)],
    ['Maximum bytes', formatLimit(config.max_bytes, formatBytes)],
    ['Maximum age', config.max_age > 0 ? formatNanos(config.max_age) : 'unlimited'],
    ['Maximum message size', formatLimit(config.max_msg_size, formatBytes)],
    ['Duplicate window', formatNanos(config.duplicate_window)],
    ['Direct get', config.allow_direct ? 'allowed' : 'not allowed'],
    ['Roll-ups', config.allow_rollup_hdrs ? 'allowed' : 'not allowed'],
    ['Message deletion', config.deny_delete ? 'denied' : 'allowed'],
    ['Purge', config.deny_purge ? 'denied' : 'allowed'],
  ];
  if (config.description !== undefined && config.description !== '') configuration.unshift(['Description', config.description]);
  if (config.sealed) configuration.push(['Sealed', 'yes']);
  const stateFields: [string, string][] = [
    ['Messages', formatCount(state.messages)],
    ['Bytes', formatBytes(state.bytes)],
    ['First sequence', state.first_seq === 0 ? '0' : `${state.first_seq} @ ${formatTime(state.first_ts)}`],
    ['Last sequence', state.last_seq === 0 ? '0' : `${state.last_seq} @ ${formatTime(state.last_ts)}`],
    ['Deleted messages', formatCount(state.num_deleted ?? 0)],
    ['Number of subjects', formatCount(state.num_subjects ?? 0)],
    ['Consumers', formatCount(state.consumer_count)],
  ];
  return `Stream ${config.name} (created ${formatTime(info.created)})\n\nConfiguration:\n${formatFields(configuration)}\nState:\n${formatFields(stateFields)}`;
}

const streamAddCommand: CommandModule = {
  command: 'add <name>',
  aliases: ['create', 'new'],
  describe: 'create a stream',
  builder: (yargs) =>
    addConnectionFlags(yargs)
      .positional('name', { type: 'string', describe: 'stream name' })
      .option('subjects', { type: 'string', describe: 'subjects to store, comma-separated (default: the stream name)' })
      .option('storage', { type: 'string', describe: 'file or memory (default file)' })
      .option('retention', { type: 'string', describe: 'limits, interest or workqueue (default limits)' })
      .option('max-msgs', { type: 'string', describe: 'most messages kept (-1 unlimited)' })
      .option('max-bytes', { type: 'string', describe: 'most bytes kept, e.g. 1GB' })
      .option('max-age', { type: 'string', describe: 'oldest message kept, e.g. 1h, 30m (≥ 100ms)' })
      .option('max-msg-size', { type: 'string', describe: 'largest message accepted, e.g. 1MB' })
      .option('max-msgs-per-subject', { type: 'string', describe: 'most messages kept per subject (-1 unlimited)' })
      .option('discard', { type: 'string', describe: 'when a limit is hit: old (drop the oldest) or new (refuse the new)' })
      .option('dupe-window', { type: 'string', describe: 'window for Nats-Msg-Id de-duplication, e.g. 2m' })
      .option('allow-direct', { type: 'boolean', describe: 'answer Direct Get requests' })
      .option('allow-rollup', { type: 'boolean', describe: 'allow Nats-Rollup headers' })
      .option('deny-delete', { type: 'boolean', describe: 'refuse deleting single messages' })
      .option('deny-purge', { type: 'boolean', describe: 'refuse purges' })
      .option('replicas', { type: 'string', describe: `replicas, 1 to ${REPLICAS_MAX} (default 1)` })
      .option('json', { type: 'boolean', describe: 'print the StreamInfo of the new stream as JSON' })
      .epilogue('Durations: 1h, 30m, 45s, 500ms, 1h30m (a bare number is seconds). Sizes: 1048576, 512KB, 1MB, 1GB.'),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const config = streamConfigFromFlags(args);
    await withJetStream(args, 'canopy stream add', async (jsm) => {
      let info: StreamInfo;
      try {
        info = await jsm.streams.add(config);
      } catch (err) {
        throw jetStreamError(err, `cannot create stream ${config.name}`);
      }
      if (args['json'] === true) writeJson(info);
      else process.stdout.write(`Stream ${config.name} was created\n\n${formatStreamInfo(info)}`);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy stream ls

async function listStreams(jsm: JetStreamManager, subject: string | undefined): Promise<StreamInfo[]> {
  const streams: StreamInfo[] = [];
  for await (const info of jsm.streams.list(subject)) streams.push(info);
  return streams.sort((a, b) => (a.config.name < b.config.name ? -1 : a.config.name > b.config.name ? 1 : 0));
}

const streamLsCommand: CommandModule = {
  command: 'ls',
  aliases: ['list'],
  describe: 'list the streams (names; --long for a table)',
  builder: (yargs) =>
    addConnectionFlags(yargs)
      .option('long', { alias: 'l', type: 'boolean', describe: 'a table with messages, bytes and subjects' })
      .option('subject', { type: 'string', describe: 'only streams whose subjects overlap this one' })
      .option('json', { type: 'boolean', describe: 'print the list of StreamInfo as JSON' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const subject = readStringFlag(args, 'subject');
    await withJetStream(args, 'canopy stream ls', async (jsm) => {
      let streams: StreamInfo[];
      try {
        streams = await listStreams(jsm, subject);
      } catch (err) {
        throw jetStreamError(err, 'cannot list streams');
      }
      if (args['json'] === true) {
        writeJson(streams);
        return;
      }
      if (streams.length === 0) {
        process.stderr.write('No streams defined\n');
        return;
      }
      if (args['long'] !== true) {
        process.stdout.write(streams.map((s) => `${s.config.name}\n`).join(''));
        return;
      }
      const rows = [
        ['Name', 'Messages', 'Bytes', 'Storage', 'Subjects'],
        ...streams.map((s) => [s.config.name, formatCount(s.state.messages), formatBytes(s.state.bytes), s.config.storage, (s.config.subjects ?? []).join(', ')]),
      ];
      process.stdout.write(formatColumns(rows));
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy stream info

const streamInfoCommand: CommandModule = {
  command: 'info <name>',
  describe: 'show a stream’s configuration and state',
  builder: (yargs) =>
    addJsonFlag(addConnectionFlags(yargs).positional('name', { type: 'string', describe: 'stream name' }), 'print the raw StreamInfo as JSON'),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const name = readNameArgument(args, 'name', 'stream');
    await withJetStream(args, 'canopy stream info', async (jsm) => {
      let info: StreamInfo;
      try {
        info = await jsm.streams.info(name);
      } catch (err) {
        throw jetStreamError(err, `cannot get stream ${name}`);
      }
      if (args['json'] === true) writeJson(info);
      else process.stdout.write(formatStreamInfo(info));
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy stream rm

const streamRmCommand: CommandModule = {
  command: 'rm <name>',
  aliases: ['delete', 'del'],
  describe: 'delete a stream and all its messages (needs --force)',
  builder: (yargs) => addForceFlag(addConnectionFlags(yargs).positional('name', { type: 'string', describe: 'stream name' }), 'really delete it'),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const name = readNameArgument(args, 'name', 'stream');
    requireForce(args, `delete stream ${name} and all its messages`);
    await withJetStream(args, 'canopy stream rm', async (jsm) => {
      try {
        await jsm.streams.delete(name);
      } catch (err) {
        throw jetStreamError(err, `cannot delete stream ${name}`);
      }
      process.stdout.write(`Deleted stream ${name}\n`);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy stream purge

function purgeOptionsFromFlags(args: Record<string, unknown>): PurgeOpts | undefined {
  const filter = readStringFlag(args, 'subject');
  const seq = readOptionalIntegerFlag(args, 'seq', { min: 1, max: JS_INTEGER_MAX });
  const keep = readOptionalIntegerFlag(args, 'keep', { min: 0, max: JS_INTEGER_MAX });
  if (seq !== undefined && keep !== undefined) throw new ConfigError('seq', 'give --seq or --keep, not both');
  if (seq !== undefined) return { seq, ...(filter === undefined ? {} : { filter }) };
  if (keep !== undefined) return { keep, ...(filter === undefined ? {} : { filter }) };
  return filter === undefined ? undefined : { filter };
}

const streamPurgeCommand: CommandModule = {
  command: 'purge <name>',
  describe: 'remove messages from a stream (needs --force)',
  builder: (yargs) =>
    addForceFlag(addConnectionFlags(yargs).positional('name', { type: 'string', describe: 'stream name' }), 'really purge')
      .option('subject', { type: 'string', describe: 'only messages on this subject (wildcards allowed)' })
      .option('seq', { type: 'string', describe: 'remove messages below this sequence (it stays)' })
      .option('keep', { type: 'string', describe: 'keep this many of the newest messages' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const name = readNameArgument(args, 'name', 'stream');
    const options = purgeOptionsFromFlags(args);
    requireForce(args, `purge stream ${name}`);
    await withJetStream(args, 'canopy stream purge', async (jsm) => {
      let purged: number;
      try {
        purged = (await jsm.streams.purge(name, options)).purged;
      } catch (err) {
        throw jetStreamError(err, `cannot purge stream ${name}`);
      }
      process.stdout.write(`Purged ${formatCount(purged)} message${purged === 1 ? '' : 's'} from stream ${name}\n`);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy stream get

export function formatStoredMessage(stream: string, msg: StoredMsg): Buffer {
  const headers = formatHeaders(msg.header);
  const head = `Item: ${stream}#${msg.seq} received ${msg.timestamp} on subject ${msg.subject}\n\n${headers === '' ? '' : `Headers:\n${headers.replace(/^(?=.)/gm, '  ')}\n`}`;
  return Buffer.concat([Buffer.from(head), payloadWithNewline(msg.data)]);
}

function storedMessageJson(msg: StoredMsg): Record<string, unknown> {
  const headers: Record<string, string[]> = {};
  if (msg.header !== undefined) for (const key of msg.header.keys()) headers[key] = msg.header.values(key);
  return { subject: msg.subject, seq: msg.seq, time: msg.timestamp, headers, data: Buffer.from(msg.data).toString('utf8') };
}

const streamGetCommand: CommandModule = {
  command: 'get <name> [seq]',
  describe: 'print one stored message: by sequence, or the last on --last-for <subject>',
  builder: (yargs) =>
    addJsonFlag(
      addConnectionFlags(yargs)
        .positional('name', { type: 'string', describe: 'stream name' })
        .positional('seq', { type: 'string', describe: 'stream sequence of the message' })
        .option('last-for', { type: 'string', describe: 'the last message on this subject instead' }),
      'print the message as JSON (payload as UTF-8 text)',
    ),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const name = readNameArgument(args, 'name', 'stream');
    const lastFor = readStringFlag(args, 'last-for');
    const seq = readOptionalIntegerFlag(args, 'seq', { min: 1, max: JS_INTEGER_MAX });
    if ((seq === undefined) === (lastFor === undefined)) throw new ConfigError('seq', 'give a sequence or --last-for <subject> (one of them)');
    const query = seq === undefined ? { last_by_subj: lastFor ?? '' } : { seq };
    const what = seq === undefined ? `the last message on ${JSON.stringify(lastFor)}` : `message ${seq}`;
    await withJetStream(args, 'canopy stream get', async (jsm) => {
      let msg: StoredMsg | null;
      try {
        msg = await jsm.streams.getMessage(name, query);
      } catch (err) {
        throw jetStreamError(err, `cannot get ${what} from stream ${name}`);
      }
      // nats.js turns the server's 10037 "no message found" into null.
      if (msg === null) throw new CliError('ERR_JS_API', `cannot get ${what} from stream ${name}: no message found (code 404, err_code 10037)`);
      if (args['json'] === true) writeJson(storedMessageJson(msg));
      else process.stdout.write(formatStoredMessage(name, msg));
    });
  },
};

// ---------------------------------------------------------------------------------------------

export const streamCommand: CommandModule = {
  command: 'stream',
  aliases: ['str'],
  describe: 'JetStream streams: stream add|ls|info|rm|purge|get',
  builder: (yargs) =>
    yargs
      .command(streamAddCommand)
      .command(streamLsCommand)
      .command(streamInfoCommand)
      .command(streamRmCommand)
      .command(streamPurgeCommand)
      .command(streamGetCommand)
      .demandCommand(1, 'name a stream command: add, ls, info, rm, purge or get'),
  handler: () => {},
};
