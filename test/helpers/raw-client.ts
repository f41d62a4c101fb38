/**
 * A raw TCP client for protocol tests: sends exact bytes and reads what the
 * server answers, so tests can assert the wire format byte for byte.
 */
import { connect, type Socket } from 'node:net';

export class RawClient {
  readonly socket: Socket;
  #received: Buffer = Buffer.alloc(0);
  #isClosed = false;
  #waiters: (() => void)[] = [];
  /**
   * When false (the default), readLine answers server PINGs itself and skips them,
   * so a test is not disturbed by the server's RTT ping; ping tests set it true.
   */
  arePingsVisible = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#isClosed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Opens a connection, reads INFO, sends CONNECT (defaults: non-verbose, headers) and waits for PONG. */
  static async connected(port: number, connect: Record<string, unknown> = {}): Promise<RawClient> {
    const client = await RawClient.open(port);
    await client.readLine();
    client.send(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, headers: true, ...connect })}\r\nPING\r\n`);
    const line = await client.readLine();
    if (connect['verbose'] === true && line === '+OK') {
      const pong = await client.readLine();
      if (pong !== 'PONG') throw new Error(`expected PONG, got ${pong}`);
    } else if (line !== 'PONG') {
      throw new Error(`expected PONG, got ${line}`);
    }
    return client;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #waitFor(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; received so far: ${JSON.stringify(this.#received.toString('latin1'))}`)), timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The next line, without ␍␊. */
  async readLine(timeoutMs = 2000): Promise<string> {
    for (;;) {
      const end = this.#received.indexOf('\r\n');
      if (end >= 0) {
        const line = this.#received.subarray(0, end).toString('latin1');
        this.#received = this.#received.subarray(end + 2);
        if (line === 'PING' && !this.arePingsVisible) {
          this.send('PONG\r\n');
          continue;
        }
        return line;
      }
      if (this.#isClosed) throw new Error(`connection closed; unread: ${JSON.stringify(this.#received.toString('latin1'))}`);
      await this.#waitFor(timeoutMs);
    }
  }

  /** Exactly `count` bytes. */
  async readBytes(count: number, timeoutMs = 2000): Promise<Buffer> {
    while (this.#received.length < count) {
      if (this.#isClosed) throw new Error('connection closed');
      await this.#waitFor(timeoutMs);
    }
    const bytes = this.#received.subarray(0, count);
    this.#received = this.#received.subarray(count);
    return bytes;
  }

  /** Everything received until the server closes the connection. */
  async readUntilClosed(timeoutMs = 3000): Promise<string> {
    while (!this.#isClosed) await this.#waitFor(timeoutMs);
    const rest = this.#received.toString('latin1');
    this.#received = Buffer.alloc(0);
    return rest;
  }

  /** Waits `ms` and returns what arrived meanwhile (for asserting that nothing arrives). */
  async drainFor(ms: number): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const rest = this.#received.toString('latin1');
    this.#received = Buffer.alloc(0);
    return rest;
  }

  close(): void {
    this.socket.destroy();
  }
}
