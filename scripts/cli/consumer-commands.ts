/**
 * `canopy consumer add|ls|info|rm|next`: JetStream consumers in the spirit of
 * the `nats` CLI, on the official @nats-io/jetstream client. Shared flag
 * readers, error rendering and formatters live in stream-commands.ts.
 * Exit codes: 0 ok, 1 a runtime or API failure, 2 a bad flag or a refusal.
 */
import { jetstream, type ConsumerConfig, type ConsumerInfo, type JsMsg } from '@nats-io/jetstream';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/server/options.ts';
import { parseDurationMs } from '../../core/util/duration.ts';
import { addConnectionFlags, CliError, readIntegerFlag, readStringFlag } from './client-connection.ts';
import {
  addForceFlag,
  addJsonFlag,
  formatColumns,
  formatCount,
  formatFields,
  formatHeaders,
  formatLimit,
  formatNanos,
  formatTime,
  JS_INTEGER_MAX,
  jetStreamError,
  payloadWithNewline,
  readChoiceFlag,
  readDurationFlagMs,
  readDurationFlagNs,
  readNameArgument,
  readOptionalIntegerFlag,
  requireForce,
  withJetStream,
  writeJson,
} from './stream-commands.ts';

export const NEXT_COUNT_MAX = 1_000_000;
export const NEXT_TIMEOUT_MS_DEFAULT = 5000;
/** nats.js refuses pull requests that expire sooner than this. */
const NEXT_TIMEOUT_MS_MIN = 1000;
const ACKS = ['explicit', 'all', 'none'] as const;
const NAMED_DELIVER_POLICIES = ['all', 'last', 'new', 'last_per_subject'] as const;

// ---------------------------------------------------------------------------------------------
// canopy consumer add

type DeliverChoice = Pick<ConsumerConfig, 'deliver_policy'> & Partial<Pick<ConsumerConfig, 'opt_start_seq' | 'opt_start_time'>>;

/**
 * `--deliver`: all, last, new, last_per_subject, a stream sequence (42), a time
 * (2024-05-01T10:00:00Z), or a duration meaning "that long ago" (1h).
 */
export function parseDeliverFlag(text: string, nowMs: number): DeliverChoice {
  const lower = text.trim().toLowerCase().replace(/-/g, '_');
  const named = NAMED_DELIVER_POLICIES.find((policy) => policy === lower);
  if (named !== undefined) return { deliver_policy: named };
  if (/^\d+$/.test(lower)) {
    const seq = Number(lower);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new ConfigError('deliver', `a start sequence is at least 1, got ${JSON.stringify(text)}`);
    return { deliver_policy: 'by_start_sequence', opt_start_seq: seq };
  }
  const agoMs = parseDurationWithUnit(text);
  const startMs = agoMs !== undefined ? nowMs - agoMs : Date.parse(text);
  if (!Number.isFinite(startMs)) {
    throw new ConfigError('deliver', `must be all, last, new, last_per_subject, a sequence, a time (RFC 3339) or a duration ago (1h), got ${JSON.stringify(text)}`);
  }
  return { deliver_policy: 'by_start_time', opt_start_time: new Date(startMs).toISOString() };
}

/** "1h", "30m", "90s"; never a bare number (that is a sequence here). */
function parseDurationWithUnit(text: string): number | undefined {
  return /^\s*[\d.]+$/.test(text) ? undefined : parseDurationMs(text);
}

function readFilterFlag(args: Record<string, unknown>): Partial<Pick<ConsumerConfig, 'filter_subject' | 'filter_subjects'>> {
  const text = readStringFlag(args, 'filter');
  if (text === undefined) return {};
  const subjects = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (subjects.length === 0) throw new ConfigError('filter', 'name a subject, e.g. --filter "orders.eu.>"');
  const [first] = subjects;
  return subjects.length === 1 && first !== undefined ? { filter_subject: first } : { filter_subjects: subjects };
}

/** The ConsumerConfig the flags describe; unset flags are left to the server's defaults. */
export function consumerConfigFromFlags(args: Record<string, unknown>, nowMs: number): Partial<ConsumerConfig> {
  const name = readNameArgument(args, 'name', 'consumer');
  const config: Partial<ConsumerConfig> = args['ephemeral'] === true ? { name } : { durable_name: name };
  config.ack_policy = readChoiceFlag(args, 'ack', ACKS) ?? 'explicit';
  const deliver = readStringFlag(args, 'deliver');
  Object.assign(config, deliver === undefined ? { deliver_policy: 'all' } : parseDeliverFlag(deliver, nowMs), readFilterFlag(args));
  const maxDeliver = readOptionalIntegerFlag(args, 'max-deliver', { min: -1, max: JS_INTEGER_MAX });
  if (maxDeliver === 0) throw new ConfigError('max-deliver', 'must be -1 (unlimited) or at least 1');
  if (maxDeliver !== undefined) config.max_deliver = maxDeliver;
  const ackWait = readDurationFlagNs(args, 'ack-wait', { minMs: 1 });
  if (ackWait !== undefined) config.ack_wait = ackWait;
  const maxAckPending = readOptionalIntegerFlag(args, 'max-ack-pending', { min: -1, max: JS_INTEGER_MAX });
  if (maxAckPending !== undefined) config.max_ack_pending = maxAckPending;
  const deliverSubject = readStringFlag(args, 'deliver-subject');
  if (deliverSubject !== undefined) {
    if (args['pull'] === true) throw new ConfigError('pull', 'a consumer with --deliver-subject is a push consumer; drop --pull');
    if (deliverSubject === '' || /[\s*>]/.test(deliverSubject)) {
      throw new ConfigError('deliver-subject', `must be a literal subject, got ${JSON.stringify(deliverSubject)}`);
    }
    config.deliver_subject = deliverSubject;
  } else if (args['pull'] === false) {
    throw new ConfigError('pull', 'a push consumer needs --deliver-subject <subject>');
  }
  return config;
}

function consumerType(config: ConsumerConfig): string {
  return config.deliver_subject === undefined || config.deliver_subject === '' ? 'pull' : `push to ${config.deliver_subject}`;
}

function formatDeliverPolicy(config: ConsumerConfig): string {
  if (config.deliver_policy === 'by_start_sequence') return `from stream sequence ${config.opt_start_seq ?? '?'}`;
  if (config.deliver_policy === 'by_start_time') return `from ${config.opt_start_time ?? '?'}`;
  return config.deliver_policy;
}

/** The readable summary of `consumer info` (and of `consumer add`). */
export function formatConsumerInfo(info: ConsumerInfo): string {
  const { config } = info;
  const isDurable = config.durable_name !== undefined && config.durable_name !== '';
  const filter = config.filter_subjects?.join(', ') ?? config.filter_subject ?? '';
  const configuration: [string, string][] = [
    ['Kind', isDurable ? 'durable' : 'ephemeral'],
    ['Type', consumerType(config)],
    ['Filter', filter === '' ? '(all subjects)' : filter],
    ['Deliver policy', formatDeliverPolicy(config)],
    ['Ack policy', config.ack_policy],
    ['Ack wait', config.ack_wait === undefined ? '—' : formatNanos(config.ack_wait)],
    ['Max deliver', formatLimit(config.max_deliver)],
    ['Max ack pending', formatLimit(config.max_ack_pending)],
    ['Replay policy', config.replay_policy],
  ];
  if (config.deliver_subject === undefined || config.deliver_subject === '') configuration.push(['Max waiting pulls', formatLimit(config.max_waiting)]);
  if (config.deliver_group !== undefined && config.deliver_group !== '') configuration.push(['Deliver group', config.deliver_group]);
  if (!isDurable && config.inactive_threshold !== undefined) configuration.push(['Inactive threshold', formatNanos(config.inactive_threshold)]);
  const state: [string, string][] = [
    ['Last delivered', `consumer sequence ${info.delivered.consumer_seq}, stream sequence ${info.delivered.stream_seq}`],
    ['Ack floor', `consumer sequence ${info.ack_floor.consumer_seq}, stream sequence ${info.ack_floor.stream_seq}`],
    ['Ack pending', formatCount(info.num_ack_pending)],
    ['Redelivered', formatCount(info.num_redelivered)],
    ['Waiting pulls', formatCount(info.num_waiting)],
    ['Unprocessed', formatCount(info.num_pending)],
  ];
  return `Consumer ${info.name} on stream ${info.stream_name} (created ${formatTime(info.created)})\n\nConfiguration:\n${formatFields(configuration)}\nState:\n${formatFields(state)}`;
}

function addStreamAndConsumerPositionals<T>(yargs: Argv<T>): Argv<T> {
  return addConnectionFlags(yargs)
    .positional('stream', { type: 'string', describe: 'stream name' })
    .positional('name', { type: 'string', describe: 'consumer name' }) as Argv<T>;
}

const consumerAddCommand: CommandModule = {
  command: 'add <stream> <name>',
  aliases: ['create', 'new'],
  describe: 'create a consumer (durable and pull unless told otherwise)',
  builder: (yargs) =>
    addJsonFlag(addStreamAndConsumerPositionals(yargs), 'print the ConsumerInfo as JSON')
      .option('filter', { type: 'string', describe: 'only messages on this subject (comma-separated for several)' })
      .option('deliver', { type: 'string', describe: 'start: all, last, new, last_per_subject, a sequence, a time, or a duration ago (1h)' })
      .option('ack', { type: 'string', describe: 'ack policy: explicit (default), all or none' })
      .option('max-deliver', { type: 'string', describe: 'deliveries per message before giving up (-1 unlimited)' })
      .option('ack-wait', { type: 'string', describe: 'time to wait for an ack before redelivering, e.g. 30s' })
      .option('pull', { type: 'boolean', describe: 'a pull consumer (the default)' })
      .option('deliver-subject', { alias: 'target', type: 'string', describe: 'make a push consumer that delivers to this subject' })
      .option('max-ack-pending', { type: 'string', describe: 'most unacknowledged messages at a time (-1 unlimited)' })
      .option('ephemeral', { type: 'boolean', describe: 'not durable: the server removes it after a while without interest' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const stream = readNameArgument(args, 'stream', 'stream');
    const config = consumerConfigFromFlags(args, Date.now());
    const name = config.durable_name ?? config.name ?? '';
    await withJetStream(args, 'canopy consumer add', async (jsm) => {
      let info: ConsumerInfo;
      try {
        info = await jsm.consumers.add(stream, config);
      } catch (err) {
        throw jetStreamError(err, `cannot create consumer ${name} on stream ${stream}`);
      }
      if (args['json'] === true) writeJson(info);
      else process.stdout.write(`Consumer ${info.name} was created on stream ${stream}\n\n${formatConsumerInfo(info)}`);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy consumer ls

const consumerLsCommand: CommandModule = {
  command: 'ls <stream>',
  aliases: ['list'],
  describe: 'list the consumers of a stream (names; --long for a table)',
  builder: (yargs) =>
    addJsonFlag(
      addConnectionFlags(yargs)
        .positional('stream', { type: 'string', describe: 'stream name' })
        .option('long', { alias: 'l', type: 'boolean', describe: 'a table with type, ack pending and unprocessed counts' }),
      'print the list of ConsumerInfo as JSON',
    ),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const stream = readNameArgument(args, 'stream', 'stream');
    await withJetStream(args, 'canopy consumer ls', async (jsm) => {
      const consumers: ConsumerInfo[] = [];
      try {
        for await (const info of jsm.consumers.list(stream)) consumers.push(info);
      } catch (err) {
        throw jetStreamError(err, `cannot list the consumers of stream ${stream}`);
      }
      consumers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      if (args['json'] === true) {
        writeJson(consumers);
        return;
      }
      if (consumers.length === 0) {
        process.stderr.write(`No consumers on stream ${stream}\n`);
        return;
      }
      if (args['long'] !== true) {
        process.stdout.write(consumers.map((c) => `${c.name}\n`).join(''));
        return;
      }
      const rows = [
        ['Name', 'Type', 'Ack pending', 'Unprocessed', 'Last delivered', 'Filter'],
        ...consumers.map((c) => [
          c.name,
          consumerType(c.config),
          formatCount(c.num_ack_pending),
          formatCount(c.num_pending),
          String(c.delivered.stream_seq),
          c.config.filter_subjects?.join(', ') ?? c.config.filter_subject ?? '',
        ]),
      ];
      process.stdout.write(formatColumns(rows));
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy consumer info / rm

const consumerInfoCommand: CommandModule = {
  command: 'info <stream> <name>',
  describe: 'show a consumer’s configuration and state',
  builder: (yargs) => addJsonFlag(addStreamAndConsumerPositionals(yargs), 'print the raw ConsumerInfo as JSON'),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const stream = readNameArgument(args, 'stream', 'stream');
    const name = readNameArgument(args, 'name', 'consumer');
    await withJetStream(args, 'canopy consumer info', async (jsm) => {
      let info: ConsumerInfo;
      try {
        info = await jsm.consumers.info(stream, name);
      } catch (err) {
        throw jetStreamError(err, `cannot get consumer ${name} on stream ${stream}`);
      }
      if (args['json'] === true) writeJson(info);
      else process.stdout.write(formatConsumerInfo(info));
    });
  },
};

const consumerRmCommand: CommandModule = {
  command: 'rm <stream> <name>',
  aliases: ['delete', 'del'],
  describe: 'delete a consumer (needs --force)',
  builder: (yargs) => addForceFlag(addStreamAndConsumerPositionals(yargs), 'really delete it'),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const stream = readNameArgument(args, 'stream', 'stream');
    const name = readNameArgument(args, 'name', 'consumer');
    requireForce(args, `delete consumer ${name} on stream ${stream}`);
    await withJetStream(args, 'canopy consumer rm', async (jsm) => {
      try {
        await jsm.consumers.delete(stream, name);
      } catch (err) {
        throw jetStreamError(err, `cannot delete consumer ${name} on stream ${stream}`);
      }
      process.stdout.write(`Deleted consumer ${name} on stream ${stream}\n`);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// canopy consumer next

/** `[#1] stream ORDERS seq 3, consumer seq 1, subject "orders.1", pending 2`, headers, a blank line, the payload. */
export function formatJsMessage(msg: JsMsg, index: number): Buffer {
  const { info } = msg;
  const redelivered = info.redelivered ? `, delivery ${info.deliveryCount}` : '';
  let head =
    `[#${index}] stream ${info.stream} seq ${info.streamSequence}, consumer seq ${info.deliverySequence}, ` +
    `subject ${JSON.stringify(msg.subject)}, ${msg.timestamp}, pending ${info.pending}${redelivered}\n`;
  const headers = formatHeaders(msg.headers);
  head += `${headers}\n`;
  return Buffer.concat([Buffer.from(head), payloadWithNewline(msg.data), Buffer.from('\n')]);
}

const consumerNextCommand: CommandModule = {
  command: 'next <stream> <name>',
  describe: 'pull messages from a pull consumer, print them and ack them',
  builder: (yargs) =>
    addStreamAndConsumerPositionals(yargs)
      .option('count', { type: 'number', default: 1, describe: 'messages to pull' })
      .option('ack', { type: 'boolean', default: true, describe: 'ack each message after printing it (--no-ack leaves them pending)' })
      .option('timeout', { type: 'string', default: '5s', describe: 'how long to wait for each message (at least 1s)' })
      .option('raw', { alias: 'r', type: 'boolean', describe: 'print payloads only, one per line' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const stream = readNameArgument(args, 'stream', 'stream');
    const name = readNameArgument(args, 'name', 'consumer');
    const count = readIntegerFlag(args, 'count', { min: 1, max: NEXT_COUNT_MAX });
    const timeoutMs = readDurationFlagMs(args, 'timeout', { minMs: NEXT_TIMEOUT_MS_MIN }) ?? NEXT_TIMEOUT_MS_DEFAULT;
    const isAcking = args['ack'] !== false;
    const isRaw = args['raw'] === true;
    await withJetStream(args, 'canopy consumer next', async (jsm, nc) => {
      const js = jetstream(nc, jsm.getOptions());
      let info: ConsumerInfo;
      try {
        info = await jsm.consumers.info(stream, name);
      } catch (err) {
        throw jetStreamError(err, `cannot use consumer ${name} on stream ${stream}`);
      }
      const { config } = info;
      if (config.deliver_subject !== undefined && config.deliver_subject !== '') {
        throw new CliError('ERR_PUSH_CONSUMER', `consumer ${name} on stream ${stream} is a push consumer (it delivers to ${config.deliver_subject}); next needs a pull consumer`);
      }
      const consumer = js.consumers.getConsumerFromInfo(info);
      const needsAck = isAcking && config.ack_policy !== 'none';
      for (let index = 1; index <= count; index++) {
        let msg: JsMsg | null;
        try {
          msg = await consumer.next({ expires: timeoutMs });
        } catch (err) {
          throw jetStreamError(err, `cannot pull from consumer ${name} on stream ${stream}`);
        }
        if (msg === null) {
          const got = index === 1 ? '' : ` (received ${index - 1} of ${count})`;
          throw new CliError('ERR_TIMEOUT', `no message arrived from consumer ${name} on stream ${stream} within ${timeoutMs} ms${got}`);
        }
        process.stdout.write(isRaw ? payloadWithNewline(msg.data) : formatJsMessage(msg, index));
        if (!needsAck) continue;
        // ackAck waits for the server's confirmation, so the ack is recorded when the command exits.
        let isAcked: boolean;
        try {
          isAcked = await msg.ackAck({ timeout: timeoutMs });
        } catch (err) {
          throw jetStreamError(err, `cannot ack stream sequence ${msg.info.streamSequence}`);
        }
        if (!isAcked) throw new CliError('ERR_ACK', `the server did not confirm the ack of stream sequence ${msg.info.streamSequence}`);
        if (!isRaw) process.stderr.write(`Acknowledged [#${index}]\n`);
      }
    });
  },
};

// ---------------------------------------------------------------------------------------------

export const consumerCommand: CommandModule = {
  command: 'consumer',
  aliases: ['con'],
  describe: 'JetStream consumers: consumer add|ls|info|rm|next',
  builder: (yargs) =>
    yargs
      .command(consumerAddCommand)
      .command(consumerLsCommand)
      .command(consumerInfoCommand)
      .command(consumerRmCommand)
      .command(consumerNextCommand)
      .demandCommand(1, 'name a consumer command: add, ls, info, rm or next'),
  handler: () => {},
};
