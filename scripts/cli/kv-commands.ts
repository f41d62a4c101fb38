/**
 * `canopy kv add|info|put|get|del|watch|ls|history|rm`: JetStream key-value
 * buckets in the spirit of the `nats` CLI, on the official @nats-io/kv client.
 * A bucket B is the stream KV_B (NATS-SPEC.md §6). Shared flag readers, error
 * rendering and formatters live in stream-commands.ts.
 * Exit codes: 0 ok, 1 a runtime or API failure (also a missing key), 2 a bad flag.
 */
import { jetstream, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry, type KvOptions, type KvStatus } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/server/options.ts';
import { addConnectionFlags, CliError, readIntegerFlag } from './client-connection.ts';
import {
  addForceFlag,
  addJsonFlag,
  formatBytes,
  formatColumns,
  formatCount,
  formatFields,
  formatLimit,
  formatNanos,
  formatTime,
  jetStreamError,
  readChoiceFlag,
  readDurationFlagMs,
  readOptionalIntegerFlag,
  readSizeFlag,
  REPLICAS_MAX,
  requireForce,
  withJetStream,
  writeJson,
} from './stream-commands.ts';

/** nats.js has no cap on history; nats-server caps max_msgs_per_subject only by int64. nats.go caps at 64. */
export const KV_HISTORY_MAX = 64;
export const WATCH_COUNT_MAX = 1_000_000_000;
const KV_STREAM_PREFIX = 'KV_';
/** Values longer than this are cut in the `history` table. */
const HISTORY_VALUE_CHARS = 40;
const STORAGES = ['file', 'memory'] as const;

const BUCKET_RE = /^[-\w]+$/;
const KEY_RE = /^[-/=.\w]+$/;
const KEY_FILTER_RE = /^[-/=.>*\w]+$/;

function readBucketArgument(args: Record<string, unknown>): string {
  const bucket = args['bucket'] === undefined ? '' : String(args['bucket']);
  if (!BUCKET_RE.test(bucket)) throw new ConfigError('bucket', `${JSON.stringify(bucket)}: a bucket name is letters, digits, "_" and "-"`);
  return bucket;
}

/** A key, or with `isFilter` a key filter with `*` and `>` (as nats.js accepts them). */
function readKeyArgument(args: Record<string, unknown>, options: { isFilter: boolean }): string {
  const key = args['key'] === undefined ? '' : String(args['key']);
  const isShaped = (options.isFilter ? KEY_FILTER_RE : KEY_RE).test(key) && !key.startsWith('.') && !key.endsWith('.') && !key.includes('..');
  if (isShaped && options.isFilter && !hasWholeTokenWildcards(key)) {
    throw new ConfigError('key', `${JSON.stringify(key)}: "*" and ">" stand for whole tokens ("users.*", "users.>"), and ">" comes last`);
  }
  if (!isShaped) {
    const allowed = options.isFilter ? 'letters, digits and - / = _ . * >' : 'letters, digits and - / = _ .';
    throw new ConfigError('key', `${JSON.stringify(key)}: a key is ${allowed}, not starting or ending with "."`);
  }
  return key;
}

/** Wildcards as NATS subjects have them: a token is exactly "*" or ">", and ">" only at the end. */
function hasWholeTokenWildcards(filter: string): boolean {
  const tokens = filter.split('.');
  return tokens.every((token, i) => (!token.includes('*') && !token.includes('>')) || token === '*' || (token === '>' && i === tokens.length - 1));
}

/**
 * Opens an existing bucket: one STREAM.INFO (so a missing bucket is the
 * server's "stream not found", not a publish that nobody answers), then the
 * nats.js bucket bound with the stream's own allow_direct.
 */
async function openBucket(jsm: JetStreamManager, nc: NatsConnection, bucket: string): Promise<{ kv: KV; info: StreamInfo }> {
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(`${KV_STREAM_PREFIX}${bucket}`);
  } catch (err) {
    throw jetStreamError(err, `cannot open bucket ${bucket}`);
  }
  const kvm = new Kvm(jetstream(nc, jsm.getOptions()));
  return { kv: await kvm.open(bucket, { allow_direct: info.config.allow_direct }), info };
}

function formatBucketInfo(bucket: string, info: StreamInfo): string {
  const { config, state } = info;
  const fields: [string, string][] = [
    ['Values', formatCount(state.messages)],
    ['Size', formatBytes(state.bytes)],
    ['History', formatCount(config.max_msgs_per_subject)],
    ['TTL', config.max_age > 0 ? formatNanos(config.max_age) : 'unlimited'],
    ['Maximum bucket size', formatLimit(config.max_bytes, formatBytes)],
    ['Maximum value size', formatLimit(config.max_msg_size, formatBytes)],
    ['Storage', config.storage],
    ['Replicas', String(config.num_replicas)],
    ['Direct get', config.allow_direct ? 'yes' : 'no'],
    ['Backing stream', config.name],
  ];
  return `Bucket ${bucket} (created ${formatTime(info.created)})\n\n${formatFields(fields)}`;
}

function formatEntryHead(entry: KvEntry): string {
  return `${entry.bucket} > ${entry.key} revision ${entry.revision} created ${entry.created.toISOString()}`;
}

function valueWithNewline(value: Uint8Array): Buffer {
  const endsWithNewline = value.length > 0 && value[value.length - 1] === 0x0a;
  return Buffer.concat([value, Buffer.from(endsWithNewline ? '' : '\n')]);
}

function addBucketPositional<T>(yargs: Argv<T>): Argv<T> {
  return addConnectionFlags(yargs).positional('bucket', { type: 'string', describe: 'bucket name' }) as Argv<T>;
}

function addBucketAndKeyPositionals<T>(yargs: Argv<T>, keyDescription = 'key'): Argv<T> {
  return addBucketPositional(yargs).positional('key', { type: 'string', describe: keyDescription }) as Argv<T>;
}

// ---------------------------------------------------------------------------------------------
// canopy kv add / info / rm

function kvOptionsFromFlags(args: Record<string, unknown>): Partial<KvOptions> {
  const options: Partial<KvOptions> = {};
  const history = readOptionalIntegerFlag(args, 'history', { min: 1, max: KV_HISTORY_MAX });
  if (history !== undefined) options.history = history;
  const ttlMs = readDurationFlagMs(args, 'ttl', { minMs: 100 });
  if (ttlMs !== undefined) options.ttl = ttlMs;
  const maxBytes = readSizeFlag(args, 'max-bytes');
  if (maxBytes !== undefined) options.max_bytes = maxBytes;
  const maxValueSize = readSizeFlag(args, 'max-value-size');
  if (maxValueSize !== undefined) options.maxValueSize = maxValueSize;
  const storage = readChoiceFlag(args, 'storage', STORAGES);
  if (storage !== undefined) options.storage = storage;
  const replicas = readOptionalIntegerFlag(args, 'replicas', { min: 1, max: REPLICAS_MAX });
  if (replicas !== undefined) options.replicas = replicas;
  return options;
}

const kvAddCommand: CommandModule = {
  command: 'add <bucket>',
  aliases: ['create', 'new'],
  describe: 'create a bucket (opens it unchanged if it exists)',
  builder: (yargs) =>
    addJsonFlag(addBucketPositional(yargs), 'print the backing StreamInfo as JSON')
      .option('history', { type: 'string', describe: `values kept per key, 1 to ${KV_HISTORY_MAX} (default 1)` })
      .option('ttl', { type: 'string', describe: 'how long values live, e.g. 1h (default forever)' })
      .option('max-bytes', { alias: 'max-bucket-size', type: 'string', describe: 'most bytes the bucket holds, e.g. 1GB' })
      .option('max-value-size', { type: 'string', describe: 'largest value accepted, e.g. 1MB' })
      .option('storage', { type: 'string', describe: 'file or memory (default file)' })
      .option('replicas', { type: 'string', describe: `replicas, 1 to ${REPLICAS_MAX} (default 1)` }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    const options = kvOptionsFromFlags(args);
    await withJetStream(args, 'canopy kv add', async (jsm, nc) => {
      // nats.js opens an existing bucket as it is; say so rather than imply the flags took effect.
      const exists = await jsm.streams.info(`${KV_STREAM_PREFIX}${bucket}`).then(
        () => true,
        () => false,
      );
      if (exists) process.stderr.write(`Bucket ${bucket} exists already; its settings are unchanged\n`);
      let status: KvStatus;
      try {
        const kv = await new Kvm(jetstream(nc, jsm.getOptions())).create(bucket, options);
        status = await kv.status();
      } catch (err) {
        throw jetStreamError(err, `cannot create bucket ${bucket}`);
      }
      if (args['json'] === true) writeJson(status.streamInfo);
      else process.stdout.write(`Bucket ${bucket} is ready\n\n${formatBucketInfo(bucket, status.streamInfo)}`);
    });
  },
};

const kvInfoCommand: CommandModule = {
  command: 'info <bucket>',
  aliases: ['status'],
  describe: 'show a bucket’s settings and size',
  builder: (yargs) => addJsonFlag(addBucketPositional(yargs), 'print the backing StreamInfo as JSON'),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    await withJetStream(args, 'canopy kv info', async (jsm, nc) => {
      const { info } = await openBucket(jsm, nc, bucket);
      if (args['json'] === true) writeJson(info);
      else process.stdout.write(formatBucketInfo(bucket, info));
    });
  },
};

const kvRmCommand: CommandModule = {
  command: 'rm <bucket>',
  describe: 'delete a bucket and every value in it (needs --force)',
  builder: (yargs) => addForceFlag(addBucketPositional(yargs), 'really delete it'),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    requireForce(args, `delete bucket ${bucket} and every value in it`);
    await withJetStream(args, 'canopy kv rm', async (jsm) => {
      try {
        await jsm.streams.delete(`${KV_STREAM_PREFIX}${bucket}`);
      } catch (err) {
        throw jetStreamError(err, `cannot delete bucket ${bucket}`);
      }
      process.stdout.write(`Deleted bucket ${bucket}\n`);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy kv put / get / del

const kvPutCommand: CommandModule = {
  command: 'put <bucket> <key> <value>',
  describe: 'store a value under a key',
  builder: (yargs) => addBucketAndKeyPositionals(yargs).positional('value', { type: 'string', describe: 'the value (text)' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    const key = readKeyArgument(args, { isFilter: false });
    const value = String(args['value'] ?? '');
    await withJetStream(args, 'canopy kv put', async (jsm, nc) => {
      const { kv } = await openBucket(jsm, nc, bucket);
      let revision: number;
      try {
        revision = await kv.put(key, value);
      } catch (err) {
        throw jetStreamError(err, `cannot put ${key} in bucket ${bucket}`);
      }
      process.stdout.write(`Stored ${bucket} > ${key} at revision ${revision}\n`);
    });
  },
};

const kvGetCommand: CommandModule = {
  command: 'get <bucket> <key>',
  describe: 'print the value of a key (or one --revision of it)',
  builder: (yargs) =>
    addBucketAndKeyPositionals(yargs)
      .option('revision', { type: 'string', describe: 'this revision instead of the latest' })
      .option('raw', { alias: 'r', type: 'boolean', describe: 'print the value only, as stored' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    const key = readKeyArgument(args, { isFilter: false });
    const revision = readOptionalIntegerFlag(args, 'revision', { min: 1, max: Number.MAX_SAFE_INTEGER });
    await withJetStream(args, 'canopy kv get', async (jsm, nc) => {
      const { kv } = await openBucket(jsm, nc, bucket);
      let entry: KvEntry | null;
      try {
        entry = await kv.get(key, revision === undefined ? undefined : { revision });
      } catch (err) {
        throw jetStreamError(err, `cannot get ${key} from bucket ${bucket}`);
      }
      const at = revision === undefined ? '' : ` at revision ${revision}`;
      if (entry === null) throw new CliError('ERR_KV_NOT_FOUND', `key ${key} not found in bucket ${bucket}${at}`);
      if (entry.operation !== 'PUT') {
        throw new CliError('ERR_KV_NOT_FOUND', `key ${key} in bucket ${bucket} was ${entry.operation === 'DEL' ? 'deleted' : 'purged'} at revision ${entry.revision}`);
      }
      if (args['raw'] === true) process.stdout.write(entry.value);
      else process.stdout.write(Buffer.concat([Buffer.from(`${formatEntryHead(entry)}\n\n`), valueWithNewline(entry.value)]));
    });
  },
};

const kvDelCommand: CommandModule = {
  command: 'del <bucket> <key>',
  aliases: ['delete'],
  describe: 'delete a key (keeps its history; --purge drops it)',
  builder: (yargs) =>
    addBucketAndKeyPositionals(yargs).option('purge', { type: 'boolean', describe: 'also remove the key’s earlier values (a roll-up)' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    const key = readKeyArgument(args, { isFilter: false });
    const isPurge = args['purge'] === true;
    await withJetStream(args, 'canopy kv del', async (jsm, nc) => {
      const { kv } = await openBucket(jsm, nc, bucket);
      try {
        if (isPurge) await kv.purge(key);
        else await kv.delete(key);
      } catch (err) {
        throw jetStreamError(err, `cannot ${isPurge ? 'purge' : 'delete'} ${key} in bucket ${bucket}`);
      }
      process.stdout.write(`${isPurge ? 'Purged' : 'Deleted'} ${bucket} > ${key}\n`);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy kv watch

function formatWatchLine(entry: KvEntry): Buffer {
  const head = `[${entry.created.toISOString()}] ${entry.operation} ${entry.bucket} > ${entry.key}`;
  if (entry.operation !== 'PUT') return Buffer.from(`${head}\n`);
  return Buffer.concat([Buffer.from(`${head}: `), valueWithNewline(entry.value)]);
}

const kvWatchCommand: CommandModule = {
  command: 'watch <bucket> [key]',
  describe: 'print the latest values, then every change, until interrupted or --count',
  builder: (yargs) =>
    addBucketAndKeyPositionals(yargs, 'key or filter (* and > allowed; default: every key)')
      .option('count', { type: 'number', describe: 'exit after this many entries' })
      .option('updates-only', { type: 'boolean', describe: 'skip the current values, print changes only' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    const key = args['key'] === undefined ? undefined : readKeyArgument(args, { isFilter: true });
    const count = args['count'] === undefined ? undefined : readIntegerFlag(args, 'count', { min: 1, max: WATCH_COUNT_MAX });
    await withJetStream(args, 'canopy kv watch', async (jsm, nc) => {
      const { kv } = await openBucket(jsm, nc, bucket);
      let watcher;
      try {
        watcher = await kv.watch({ ...(key === undefined ? {} : { key }), ...(args['updates-only'] === true ? { include: 'updates' as const } : {}) });
      } catch (err) {
        throw jetStreamError(err, `cannot watch bucket ${bucket}`);
      }
      const onSignal = (): void => watcher.stop();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      process.stderr.write(`Watching bucket ${bucket}${key === undefined ? '' : ` key ${key}`}\n`);
      let seen = 0;
      try {
        for await (const entry of watcher) {
          process.stdout.write(formatWatchLine(entry));
          seen++;
          if (count !== undefined && seen >= count) watcher.stop();
        }
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy kv ls / history

async function listBuckets(jsm: JetStreamManager, nc: NatsConnection): Promise<KvStatus[]> {
  const statuses: KvStatus[] = [];
  for await (const status of new Kvm(jetstream(nc, jsm.getOptions())).list()) statuses.push(status);
  return statuses.sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0));
}

const kvLsCommand: CommandModule = {
  command: 'ls [bucket]',
  aliases: ['list'],
  describe: 'list the buckets, or the keys of a bucket',
  builder: (yargs) =>
    addBucketPositional(yargs).option('long', { alias: 'l', type: 'boolean', describe: 'buckets as a table with values, size and history' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    if (args['bucket'] !== undefined) {
      const bucket = readBucketArgument(args);
      await withJetStream(args, 'canopy kv ls', async (jsm, nc) => {
        const { kv } = await openBucket(jsm, nc, bucket);
        const keys: string[] = [];
        try {
          for await (const key of await kv.keys()) keys.push(key);
        } catch (err) {
          throw jetStreamError(err, `cannot list the keys of bucket ${bucket}`);
        }
        if (keys.length === 0) process.stderr.write(`No keys in bucket ${bucket}\n`);
        process.stdout.write(keys.sort().map((key) => `${key}\n`).join(''));
      });
      return;
    }
    await withJetStream(args, 'canopy kv ls', async (jsm, nc) => {
      let statuses: KvStatus[];
      try {
        statuses = await listBuckets(jsm, nc);
      } catch (err) {
        throw jetStreamError(err, 'cannot list buckets');
      }
      if (statuses.length === 0) {
        process.stderr.write('No buckets defined\n');
        return;
      }
      if (args['long'] !== true) {
        process.stdout.write(statuses.map((s) => `${s.bucket}\n`).join(''));
        return;
      }
      const rows = [
        ['Bucket', 'Values', 'Size', 'History', 'TTL'],
        ...statuses.map((s) => [
          s.bucket,
          formatCount(s.values),
          formatBytes(s.size),
          String(s.history),
          s.streamInfo.config.max_age > 0 ? formatNanos(s.streamInfo.config.max_age) : 'unlimited',
        ]),
      ];
      process.stdout.write(formatColumns(rows));
    });
  },
};

function shortValue(entry: KvEntry): string {
  if (entry.operation !== 'PUT') return '';
  const text = Buffer.from(entry.value).toString('utf8').replace(/\s+/g, ' ');
  return text.length > HISTORY_VALUE_CHARS ? `${text.slice(0, HISTORY_VALUE_CHARS - 1)}…` : text;
}

const kvHistoryCommand: CommandModule = {
  command: 'history <bucket> <key>',
  describe: 'list the stored revisions of a key',
  builder: (yargs) => addBucketAndKeyPositionals(yargs),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const bucket = readBucketArgument(args);
    const key = readKeyArgument(args, { isFilter: false });
    await withJetStream(args, 'canopy kv history', async (jsm, nc) => {
      const { kv } = await openBucket(jsm, nc, bucket);
      const entries: KvEntry[] = [];
      try {
        for await (const entry of await kv.history({ key })) entries.push(entry);
      } catch (err) {
        throw jetStreamError(err, `cannot read the history of ${key} in bucket ${bucket}`);
      }
      if (entries.length === 0) throw new CliError('ERR_KV_NOT_FOUND', `key ${key} not found in bucket ${bucket}`);
      const rows = [
        ['Revision', 'Op', 'Created', 'Length', 'Value'],
        ...entries.map((e) => [String(e.revision), e.operation, e.created.toISOString(), String(e.length), shortValue(e)]),
      ];
      process.stdout.write(formatColumns(rows));
    });
  },
};

// ---------------------------------------------------------------------------------------------

export const kvCommand: CommandModule = {
  command: 'kv',
  describe: 'JetStream key-value buckets: kv add|info|put|get|del|watch|ls|history|rm',
  builder: (yargs) =>
    yargs
      .command(kvAddCommand)
      .command(kvInfoCommand)
      .command(kvPutCommand)
      .command(kvGetCommand)
      .command(kvDelCommand)
      .command(kvWatchCommand)
      .command(kvLsCommand)
      .command(kvHistoryCommand)
      .command(kvRmCommand)
      .demandCommand(1, 'name a kv command: add, info, put, get, del, watch, ls, history or rm'),
  handler: () => {},
};
