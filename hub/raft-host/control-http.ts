/**
 * The HTTP API a test harness or a benchmark drives a RaftHost through (loopback by
 * default). JSON answers; proposals are a CBOR array of byte strings so a batch costs
 * one request.
 *
 *     GET  /status                          the node's Raft status, record count, digest
 *     POST /propose   body: CBOR [bytes…]   { indexes } once every record is committed and applied here
 *     GET  /records?from=I&max=N[&stale=1]  { records: [{ index, data (base64) }], applied }; linearizable unless stale
 *     POST /members   { type, nodeId, address? }   one membership change: { index } once applied
 *     POST /transfer  { to }                leadership transfer
 *
 * Errors: 421 `not-leader` (with `leader`), 503 for a timeout, overload or a stopped
 * replica, 400 for a malformed request, 413 for a body over
 * {@link RAFT_CONTROL_BODY_BYTES_MAX}. Every error body is `{ error, code, leader? }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Decoder } from 'cbor-x';
import type { ConfChange } from '../raft/index.ts';
import { RaftHostError, type RaftHost } from './raft-host.ts';
import { RAFT_CBOR_OPTIONS } from './wire.ts';

/** The largest request body (a proposal batch): 16 MiB. */
export const RAFT_CONTROL_BODY_BYTES_MAX = 16 * 1024 * 1024;
/** The most records one /records answer holds. */
export const RAFT_CONTROL_READ_MAX = 10_000;

const decoder = new Decoder(RAFT_CBOR_OPTIONS);
const CHANGE_TYPES: readonly string[] = ['add-learner', 'add-voter', 'remove'] satisfies ConfChange['type'][];

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > RAFT_CONTROL_BODY_BYTES_MAX) {
        reject(new BadRequest(413, `body over ${RAFT_CONTROL_BODY_BYTES_MAX} bytes (RAFT_CONTROL_BODY_BYTES_MAX)`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function replyError(response: ServerResponse, error: unknown): void {
  if (error instanceof RaftHostError) {
    const status = error.code === 'not-leader' ? 421 : error.code === 'refused' ? 409 : 503;
    reply(response, status, { error: error.message, code: error.code, leader: error.leader });
    return;
  }
  if (error instanceof BadRequest) {
    reply(response, error.status, { error: error.message, code: 'bad-request' });
    return;
  }
  reply(response, 500, { error: (error as Error).message, code: 'internal' });
}

function jsonBody(body: Buffer): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new BadRequest(400, 'the body must be a JSON object');
}

function positiveInteger(value: unknown, name: string): number {
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number <= 0) throw new BadRequest(400, `${name} must be a positive integer`);
  return number;
}

async function handle(host: RaftHost, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://control');
  const route = `${request.method} ${url.pathname}`;
  switch (route) {
    case 'GET /status':
      return reply(response, 200, host.status());
    case 'POST /propose': {
      let records: unknown;
      try {
        records = decoder.decode(await readBody(request));
      } catch (error) {
        if (error instanceof BadRequest) throw error;
        throw new BadRequest(400, 'the body must be a CBOR array of byte strings');
      }
      if (!Array.isArray(records) || !records.every((record) => record instanceof Uint8Array && record.length > 0)) {
        throw new BadRequest(400, 'the body must be a CBOR array of non-empty byte strings');
      }
      return reply(response, 200, { indexes: await host.proposeAll(records as Uint8Array[]) });
    }
    case 'GET /records': {
      const from = positiveInteger(url.searchParams.get('from') ?? '1', 'from');
      const max = Math.min(positiveInteger(url.searchParams.get('max') ?? String(RAFT_CONTROL_READ_MAX), 'max'), RAFT_CONTROL_READ_MAX);
      const { records, applied } = await host.read(from, max, url.searchParams.get('stale') === '1');
      return reply(response, 200, { records: records.map((record) => ({ index: record.index, data: Buffer.from(record.data).toString('base64') })), applied });
    }
    case 'POST /members': {
      const body = jsonBody(await readBody(request));
      if (typeof body.type !== 'string' || !CHANGE_TYPES.includes(body.type)) throw new BadRequest(400, `type must be one of ${CHANGE_TYPES.join(', ')}`);
      if (body.address !== undefined && typeof body.address !== 'string') throw new BadRequest(400, 'address must be a string');
      const nodeId = positiveInteger(body.nodeId, 'nodeId');
      const index = await host.changeMembership({ type: body.type as ConfChange['type'], nodeId, ...(body.address === undefined ? {} : { address: body.address }) });
      return reply(response, 200, { index });
    }
    case 'POST /transfer': {
      host.transferLeadership(positiveInteger(jsonBody(await readBody(request)).to, 'to'));
      return reply(response, 200, {});
    }
    default:
      throw new BadRequest(404, `no route ${route}`);
  }
}

/** Serves the control API of `host` on host:port (port 0 picks one). */
export async function startControlServer(host: RaftHost, listen: { readonly host: string; readonly port: number }): Promise<Server> {
  const server = createServer((request, response) => {
    handle(host, request, response).catch((error: unknown) => replyError(response, error));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, resolve);
  });
  return server;
}

export function serverPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
