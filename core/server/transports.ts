/** Adapters from real sockets to {@link ClientTransport}. */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { ClientTransport } from './connection.ts';

export class TcpTransport implements ClientTransport {
  readonly #socket: Socket;
  constructor(socket: Socket) {
    this.#socket = socket;
  }
  write(buffers: readonly Buffer[]): boolean {
    const socket = this.#socket;
    if (socket.destroyed) return true;
    if (buffers.length === 1) return socket.write(buffers[0]!);
    socket.cork();
    let isWritable = true;
    for (let i = 0; i < buffers.length; i++) isWritable = socket.write(buffers[i]!);
    socket.uncork();
    return isWritable;
  }
  bufferedBytes(): number {
    return this.#socket.writableLength;
  }
  end(): void {
    this.#socket.end();
    // A peer that never reads must not keep a closed connection's socket alive.
    setTimeout(() => this.#socket.destroy(), 5000).unref();
  }
  destroy(): void {
    this.#socket.destroy();
  }
}

/** Bytes the ws layer may hold before the writer is told to wait for drain. */
export const WEBSOCKET_BUFFERED_BYTES_HIGH = 256 * 1024;

/**
 * nats-server sends binary frames; nats.js decodes nothing from text frames
 * (NATS-SPEC.md §1.11). One flush = one binary frame.
 */
export class WebSocketTransport implements ClientTransport {
  readonly #socket: WebSocket;
  readonly #onDrain: () => void;
  #isWaitingForDrain = false;
  readonly #onSent: (err?: Error) => void;

  constructor(socket: WebSocket, onDrain: () => void) {
    this.#socket = socket;
    this.#onDrain = onDrain;
    this.#onSent = () => {
      if (this.#isWaitingForDrain && this.#socket.bufferedAmount < WEBSOCKET_BUFFERED_BYTES_HIGH) {
        this.#isWaitingForDrain = false;
        this.#onDrain();
      }
    };
  }
  write(buffers: readonly Buffer[]): boolean {
    if (this.#socket.readyState !== this.#socket.OPEN) return true;
    const frame = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers as Buffer[]);
    this.#socket.send(frame, { binary: true }, this.#onSent);
    if (this.#socket.bufferedAmount >= WEBSOCKET_BUFFERED_BYTES_HIGH) {
      this.#isWaitingForDrain = true;
      return false;
    }
    return true;
  }
  bufferedBytes(): number {
    return this.#socket.bufferedAmount;
  }
  end(): void {
    this.#socket.close(1000);
    setTimeout(() => this.#socket.terminate(), 5000).unref();
  }
  destroy(): void {
    this.#socket.terminate();
  }
}
