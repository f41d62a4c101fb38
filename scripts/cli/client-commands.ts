/**
 * `canopy pub|sub|req|reply`: small client tools in the spirit of the `nats` CLI,
 * built on the official nats.js client, so they work against canopy and
 * nats-server alike. Data goes to stdout, notices and summaries to stderr.
 * Exit codes: 0 ok, 1 a runtime failure (connection, timeout, no responders),
 * 2 a bad flag (a ConfigError, reported by the `.fail` handler in canopy.ts).
 */
import { headers as newHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/server/options.ts';
import { compileTemplate, renderTemplate, TemplateError, type BodyTemplate } from './body-template.ts';
import {
  addConnectionFlags,
  CliError,
  connectClient,
  describeError,
  isNoRespondersError,
  parseClientSecurity,
  parseServerUrls,
  type ClientSecurity,
  readDurationMsFlag,
  readIntegerFlag,
  readStringFlag,
} from './client-connection.ts';

/** natscli's default queue group for `nats reply`, so several repliers share the load. */
export const REPLY_QUEUE_DEFAULT = 'NATS-RPLY-22';
export const MESSAGE_COUNT_MAX = 1_000_000_000;
export const HEADERS_MAX = 256;
export const SLEEP_MS_MAX = 3_600_000;
export const REQUEST_TIMEOUT_MS_DEFAULT = 2000;
export const REQUEST_TIMEOUT_MS_MAX = 3_600_000;
/** stdin bodies larger than this are refused (the default max_payload is 1 MiB). */
export const STDIN_BYTES_MAX = 64 * 1024 * 1024;
/** While publishing many messages, await a flush every this many messages, keeping one in flight. */
const PUBLISH_FLUSH_EVERY = 10_000;

const TEMPLATE_HELP = `Body, subject and header values may use templates (as in the nats CLI):
  {{Count}}         the message number, from 1
  {{TimeStamp}}     the time, RFC3339
  {{Unix}}          seconds since 1970 ({{UnixNano}}: nanoseconds)
  {{Time}}          the time as 3:04PM
  {{ID}}            a unique id ({{UUID}}: a random UUID)
  {{Random 10 100}} random letters and digits, 10 to 100 of them`;

type HeaderTemplate = { readonly key: string; readonly value: BodyTemplate };

type MessageTemplates = {
  readonly subject: BodyTemplate;
  readonly body: BodyTemplate;
  readonly headers: readonly HeaderTemplate[];
};

// ---------------------------------------------------------------------------------------------
// Flags shared by several commands

function addHeaderFlag<T>(yargs: Argv<T>): Argv<T> {
  return yargs.option('header', {
    alias: 'H',
    type: 'string',
    array: true,
    describe: 'add a header, Key:Value (repeatable)',
  }) as Argv<T>;
}

function addCountFlag<T>(yargs: Argv<T>, describe: string, defaultCount: number | undefined): Argv<T> {
  return yargs.option('count', {
    type: 'number',
    describe,
    ...(defaultCount === undefined ? {} : { default: defaultCount }),
  }) as Argv<T>;
}

function addTemplatesFlag<T>(yargs: Argv<T>): Argv<T> {
  return yargs.option('templates', {
    type: 'boolean',
    default: true,
    describe: 'expand {{…}} templates (--no-templates sends the text as is)',
  }) as Argv<T>;
}

function compileFlagTemplate(key: string, source: string, isEnabled: boolean): BodyTemplate {
  try {
    return compileTemplate(source, { isEnabled });
  } catch (err) {
    if (err instanceof TemplateError) throw new ConfigError(key, err.message);
    throw err;
  }
}

function parseHeaderFlags(argv: Record<string, unknown>, isEnabled: boolean): HeaderTemplate[] {
  const raw = argv['header'];
  const values = raw === undefined ? [] : Array.isArray(raw) ? raw.map(String) : [String(raw)];
  if (values.length > HEADERS_MAX) throw new ConfigError('header', `at most ${HEADERS_MAX} headers`);
  return values.map((text) => {
    const colon = text.indexOf(':');
    const key = colon === -1 ? '' : text.slice(0, colon).trim();
    if (key === '' || /[\s:]/.test(key)) {
      throw new ConfigError('header', `${JSON.stringify(text)} must look like Key:Value`);
    }
    return { key, value: compileFlagTemplate('header', text.slice(colon + 1).trim(), isEnabled) };
  });
}

function parseMessageTemplates(argv: Record<string, unknown>, body: string): MessageTemplates {
  const isEnabled = argv['templates'] !== false;
  return {
    subject: compileFlagTemplate('subject', String(argv['subject']), isEnabled),
    body: compileFlagTemplate('body', body, isEnabled),
    headers: parseHeaderFlags(argv, isEnabled),
  };
}

function renderHeaders(templates: readonly HeaderTemplate[], count: number): MsgHdrs | undefined {
  if (templates.length === 0) return undefined;
  const headers = newHeaders();
  for (const header of templates) headers.append(header.key, renderTemplate(header.value, { count }));
  return headers;
}

function readBodyArgument(argv: Record<string, unknown>): string | undefined {
  const body = argv['body'];
  // yargs turns a numeric positional into a number; the body is text.
  return body === undefined ? undefined : String(body);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin) {
    const buffer = chunk as Buffer;
    bytes += buffer.length;
    if (bytes > STDIN_BYTES_MAX) throw new CliError('ERR_STDIN', `stdin holds more than ${STDIN_BYTES_MAX} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function formatRttMs(ms: number): string {
  return ms < 1 ? `${Math.round(ms * 1000)}µs` : `${ms.toFixed(3)}ms`;
}

/** `[#1] Received on "subject"`, headers, a blank line, the payload: the nats CLI's layout. */
function formatReceived(options: { msg: Msg; index: number; isHeadersOnly: boolean }): Buffer {
  const { msg } = options;
  const replyText = msg.reply === undefined || msg.reply === '' ? '' : ` with reply ${JSON.stringify(msg.reply)}`;
  let head = `[#${options.index}] Received on ${JSON.stringify(msg.subject)}${replyText}\n`;
  if (msg.headers !== undefined) {
    if (msg.headers.hasError) head += `NATS/1.0 ${msg.headers.code} ${msg.headers.description}\n`;
    for (const key of msg.headers.keys()) {
      for (const value of msg.headers.values(key)) head += `${key}: ${value}\n`;
    }
    head += '\n';
  }
  if (options.isHeadersOnly) return Buffer.from(head);
  const endsWithNewline = msg.data.length > 0 && msg.data[msg.data.length - 1] === 0x0a;
  return Buffer.concat([Buffer.from(head), msg.data, Buffer.from(endsWithNewline ? '\n' : '\n\n')]);
}

/** Ends `subscription` on SIGINT/SIGTERM so the command can close cleanly; returns the remover. */
function unsubscribeOnSignal(subscription: Subscription): () => void {
  const onSignal = (): void => subscription.unsubscribe();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
}

/** Reports disconnects and reconnects of a long-running command on stderr. */
function reportStatus(nc: NatsConnection): void {
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        process.stderr.write(`canopy: ${status.type === 'disconnect' ? 'disconnected from' : 'reconnected to'} ${status.server}\n`);
      }
    }
  })();
}

async function closeQuietly(nc: NatsConnection): Promise<void> {
  try {
    await nc.close();
  } catch {
    // The command already failed or finished; a close error adds nothing the user can act on.
  }
}

// ---------------------------------------------------------------------------------------------
// canopy pub

type PubOptions = {
  readonly servers: string[];
  readonly security: ClientSecurity;
  readonly templates: MessageTemplates;
  readonly count: number;
  readonly sleepMs: number;
  readonly reply: string | undefined;
  readonly isQuiet: boolean;
};

async function parsePubOptions(argv: Record<string, unknown>): Promise<PubOptions> {
  const servers = parseServerUrls(argv['server']);
  const count = readIntegerFlag(argv, 'count', { min: 1, max: MESSAGE_COUNT_MAX });
  const sleep = argv['sleep'] === undefined ? 0 : readDurationMsFlag(argv, 'sleep', { max: SLEEP_MS_MAX });
  const bodyArgument = readBodyArgument(argv);
  const isStdin = argv['stdin'] === true;
  if (isStdin && bodyArgument !== undefined) throw new ConfigError('stdin', 'give either a body argument or --stdin, not both');
  const body = isStdin ? await readStdin() : (bodyArgument ?? '');
  return {
    servers,
    security: parseClientSecurity(argv),
    templates: parseMessageTemplates(argv, body),
    count,
    sleepMs: sleep,
    reply: readStringFlag(argv, 'reply'),
    isQuiet: argv['quiet'] === true,
  };
}

async function publishMessages(nc: NatsConnection, options: PubOptions): Promise<{ bytes: number; subject: string }> {
  let bytes = 0;
  let subject = '';
  let flushInFlight: Promise<void> | undefined;
  for (let count = 1; count <= options.count; count++) {
    subject = renderTemplate(options.templates.subject, { count });
    const payload = Buffer.from(renderTemplate(options.templates.body, { count }));
    const headers = renderHeaders(options.templates.headers, count);
    nc.publish(subject, payload, {
      ...(headers === undefined ? {} : { headers }),
      ...(options.reply === undefined ? {} : { reply: options.reply }),
    });
    bytes += payload.length;
    if (options.sleepMs > 0 && count < options.count) {
      await sleepMs(options.sleepMs);
    } else if (count % PUBLISH_FLUSH_EVERY === 0) {
      // Keep at most two batches unacknowledged: bounded memory without a pipeline bubble.
      await flushInFlight;
      flushInFlight = nc.flush();
    }
  }
  await flushInFlight;
  await nc.flush();
  return { bytes, subject };
}

export const pubCommand: CommandModule = {
  command: 'pub <subject> [body]',
  describe: 'publish a message (or --count of them)',
  builder: (yargs) =>
    addTemplatesFlag(addHeaderFlag(addConnectionFlags(yargs)))
      .positional('subject', { type: 'string', describe: 'subject to publish to' })
      .positional('body', { type: 'string', describe: 'message body (templates allowed)' })
      .option('count', { type: 'number', default: 1, describe: 'number of messages to publish' })
      .option('sleep', { type: 'string', describe: 'pause between messages (500, 500ms, 1s)' })
      .option('reply', { type: 'string', describe: 'reply subject to set on the messages' })
      .option('stdin', { alias: 'force-stdin', type: 'boolean', describe: 'read the body from stdin' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'print no summary' })
      .epilogue(TEMPLATE_HELP),
  handler: async (argv) => {
    const options = await parsePubOptions(argv as Record<string, unknown>);
    const nc = await connectClient({ servers: options.servers, security: options.security, name: 'canopy pub' });
    try {
      const startedMs = performance.now();
      const { bytes, subject } = await publishMessages(nc, options);
      const elapsedMs = performance.now() - startedMs;
      if (!options.isQuiet) {
        const target = options.count === 1 ? JSON.stringify(subject) : `subject ${JSON.stringify(options.templates.subject.source)}`;
        process.stderr.write(
          `Published ${options.count} message${options.count === 1 ? '' : 's'} (${bytes} bytes) to ${target} in ${formatRttMs(elapsedMs)}\n`,
        );
      }
    } catch (err) {
      throw err instanceof CliError || err instanceof ConfigError ? err : new CliError('ERR_PUBLISH', `publish failed: ${describeError(err)}`, { cause: err });
    } finally {
      await closeQuietly(nc);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// canopy sub

export const subCommand: CommandModule = {
  command: 'sub <subject>',
  describe: 'subscribe and print messages',
  builder: (yargs) =>
    addCountFlag(addConnectionFlags(yargs), 'exit after this many messages', undefined)
      .positional('subject', { type: 'string', describe: 'subject (wildcards allowed)' })
      .option('queue', { type: 'string', describe: 'join this queue group' })
      .option('raw', { alias: 'r', type: 'boolean', describe: 'print payloads only, one per line' })
      .option('headers-only', { type: 'boolean', describe: 'print the subject and headers, not payloads' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const servers = parseServerUrls(args['server']);
    const security = parseClientSecurity(args);
    const count = args['count'] === undefined ? undefined : readIntegerFlag(args, 'count', { min: 1, max: MESSAGE_COUNT_MAX });
    const queue = readStringFlag(args, 'queue');
    const subject = String(args['subject']);
    const isRaw = args['raw'] === true;
    const isHeadersOnly = args['headers-only'] === true;
    const nc = await connectClient({ servers, security, name: 'canopy sub' });
    try {
      reportStatus(nc);
      const subscription = nc.subscribe(subject, {
        ...(queue === undefined ? {} : { queue }),
        ...(count === undefined ? {} : { max: count }),
      });
      await nc.flush();
      const removeSignalHandlers = unsubscribeOnSignal(subscription);
      process.stderr.write(`Subscribing on ${JSON.stringify(subject)}${queue === undefined ? '' : ` in queue group ${JSON.stringify(queue)}`}\n`);
      let index = 0;
      for await (const msg of subscription) {
        index++;
        process.stdout.write(isRaw ? Buffer.concat([msg.data, Buffer.from('\n')]) : formatReceived({ msg, index, isHeadersOnly }));
      }
      removeSignalHandlers();
    } catch (err) {
      throw err instanceof CliError ? err : new CliError('ERR_SUBSCRIBE', `subscribe failed: ${describeError(err)}`, { cause: err });
    } finally {
      await closeQuietly(nc);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// canopy req

function requestError(err: unknown, options: { subject: string; timeoutMs: number }): CliError {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
  if (isNoRespondersError(err)) {
    return new CliError('ERR_NO_RESPONDERS', `no responders are available for ${JSON.stringify(options.subject)}`, { cause: err });
  }
  if ((err instanceof Error && err.name === 'TimeoutError') || cause?.name === 'TimeoutError') {
    return new CliError('ERR_TIMEOUT', `request on ${JSON.stringify(options.subject)} timed out after ${options.timeoutMs} ms`, { cause: err });
  }
  return new CliError('ERR_REQUEST', `request on ${JSON.stringify(options.subject)} failed: ${describeError(err)}`, { cause: err });
}

function writeReply(reply: Msg, isRaw: boolean): void {
  if (isRaw) {
    process.stdout.write(Buffer.concat([reply.data, Buffer.from('\n')]));
    return;
  }
  let head = '';
  if (reply.headers !== undefined) {
    for (const key of reply.headers.keys()) {
      for (const value of reply.headers.values(key)) head += `${key}: ${value}\n`;
    }
    head += '\n';
  }
  process.stdout.write(Buffer.concat([Buffer.from(head), reply.data, Buffer.from('\n')]));
}

export const reqCommand: CommandModule = {
  command: 'req <subject> [body]',
  aliases: ['request'],
  describe: 'send a request and print the reply',
  builder: (yargs) =>
    addTemplatesFlag(addHeaderFlag(addConnectionFlags(yargs)))
      .positional('subject', { type: 'string', describe: 'subject to send the request to' })
      .positional('body', { type: 'string', describe: 'request body (templates allowed)' })
      .option('count', { type: 'number', default: 1, describe: 'number of requests, sent one after another' })
      .option('timeout', { type: 'string', default: String(REQUEST_TIMEOUT_MS_DEFAULT), describe: 'time to wait for each reply (ms, or 2s)' })
      .option('sleep', { type: 'string', describe: 'pause between requests (500, 500ms, 1s)' })
      .option('raw', { alias: 'r', type: 'boolean', describe: 'print reply payloads only' })
      .epilogue(TEMPLATE_HELP),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const servers = parseServerUrls(args['server']);
    const security = parseClientSecurity(args);
    const count = readIntegerFlag(args, 'count', { min: 1, max: MESSAGE_COUNT_MAX });
    const timeoutMs = readDurationMsFlag(args, 'timeout', { max: REQUEST_TIMEOUT_MS_MAX });
    if (timeoutMs < 1) throw new ConfigError('timeout', 'must be at least 1 ms');
    const sleep = args['sleep'] === undefined ? 0 : readDurationMsFlag(args, 'sleep', { max: SLEEP_MS_MAX });
    const templates = parseMessageTemplates(args, readBodyArgument(args) ?? '');
    const isRaw = args['raw'] === true;
    const nc = await connectClient({ servers, security, name: 'canopy req' });
    try {
      for (let index = 1; index <= count; index++) {
        const subject = renderTemplate(templates.subject, { count: index });
        const headers = renderHeaders(templates.headers, index);
        if (!isRaw) process.stderr.write(`Sending request on ${JSON.stringify(subject)}\n`);
        const startedMs = performance.now();
        let reply: Msg;
        try {
          reply = await nc.request(subject, renderTemplate(templates.body, { count: index }), {
            timeout: timeoutMs,
            ...(headers === undefined ? {} : { headers }),
          });
        } catch (err) {
          throw requestError(err, { subject, timeoutMs });
        }
        if (!isRaw) process.stderr.write(`Received with rtt ${formatRttMs(performance.now() - startedMs)}\n`);
        writeReply(reply, isRaw);
        if (sleep > 0 && index < count) await sleepMs(sleep);
      }
    } finally {
      await closeQuietly(nc);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// canopy reply

export const replyCommand: CommandModule = {
  command: 'reply <subject> [body]',
  describe: 'answer requests with a body (templates, {{Request}}) or --echo',
  builder: (yargs) =>
    addCountFlag(addTemplatesFlag(addHeaderFlag(addConnectionFlags(yargs))), 'exit after answering this many requests', undefined)
      .positional('subject', { type: 'string', describe: 'subject to listen on (wildcards allowed)' })
      .positional('body', { type: 'string', describe: 'reply body (templates allowed; {{Request}} is the request payload)' })
      .option('queue', { type: 'string', default: REPLY_QUEUE_DEFAULT, describe: 'queue group name' })
      .option('echo', { type: 'boolean', describe: 'reply with the request payload and headers' })
      .epilogue(`${TEMPLATE_HELP}\n  {{Request}}       the request payload`),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const servers = parseServerUrls(args['server']);
    const security = parseClientSecurity(args);
    const count = args['count'] === undefined ? undefined : readIntegerFlag(args, 'count', { min: 1, max: MESSAGE_COUNT_MAX });
    const queue = readStringFlag(args, 'queue') ?? REPLY_QUEUE_DEFAULT;
    const bodyArgument = readBodyArgument(args);
    const isEcho = args['echo'] === true || bodyArgument === undefined;
    if (args['echo'] !== true && bodyArgument === undefined) {
      process.stderr.write('No body supplied, echoing requests\n');
    }
    const isTemplated = args['templates'] !== false;
    const body = compileFlagTemplate('body', bodyArgument ?? '', isTemplated);
    const headerTemplates = parseHeaderFlags(args, isTemplated);
    const subject = String(args['subject']);
    const nc = await connectClient({ servers, security, name: 'canopy reply' });
    try {
      reportStatus(nc);
      const subscription = nc.subscribe(subject, { queue, ...(count === undefined ? {} : { max: count }) });
      await nc.flush();
      const removeSignalHandlers = unsubscribeOnSignal(subscription);
      process.stderr.write(`Listening on ${JSON.stringify(subject)} in group ${JSON.stringify(queue)}\n`);
      let index = 0;
      for await (const msg of subscription) {
        index++;
        process.stdout.write(formatReceived({ msg, index, isHeadersOnly: false }));
        if (msg.reply === undefined || msg.reply === '') {
          process.stderr.write(`[#${index}] has no reply subject; not answering\n`);
          continue;
        }
        const headers = renderHeaders(headerTemplates, index) ?? (isEcho && msg.headers !== undefined ? newHeaders() : undefined);
        if (isEcho && msg.headers !== undefined && headers !== undefined) {
          for (const key of msg.headers.keys()) for (const value of msg.headers.values(key)) headers.append(key, value);
        }
        const data = isEcho ? msg.data : renderTemplate(body, { count: index, request: msg.string() });
        msg.respond(data, headers === undefined ? undefined : { headers });
      }
      removeSignalHandlers();
      await nc.flush();
    } catch (err) {
      throw err instanceof CliError ? err : new CliError('ERR_REPLY', `reply failed: ${describeError(err)}`, { cause: err });
    } finally {
      await closeQuietly(nc);
    }
  },
};
