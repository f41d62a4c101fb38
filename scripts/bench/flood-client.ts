/**
 * One raw NATS client of a connection flood (flood-load.ts, and the churn test in
 * test/interop/connection-churn.test.ts): INFO, then CONNECT + PING, then PONG.
 */
import { connect, type Socket } from 'node:net';

/** A client not through INFO, CONNECT and PONG by then gives up (the flood never hangs on one). */
const CLIENT_SETUP_MS_MAX = 60_000;
const CONNECT_LINE = 'CONNECT {"verbose":false,"pedantic":false,"name":"flood"}\r\nPING\r\n';

/**
 * One client: resolves once the server answered the PING after CONNECT, rejects on close or
 * error first. `socket.on('data')` answers later server PINGs.
 */
export function openFloodClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    let isConnectSent = false;
    let isConnected = false;
    socket.setEncoding('latin1');
    socket.setTimeout(CLIENT_SETUP_MS_MAX, () => {
      socket.destroy();
      reject(new Error(`no PONG within ${CLIENT_SETUP_MS_MAX} ms`));
    });
    socket.on('data', (text: string) => {
      if (isConnected) {
        if (text.includes('PING\r\n')) socket.write('PONG\r\n');
        return;
      }
      received += text;
      if (!isConnectSent && received.startsWith('INFO ') && received.includes('\r\n')) {
        socket.write(CONNECT_LINE);
        isConnectSent = true;
      }
      if (received.includes('PONG\r\n')) {
        isConnected = true;
        socket.setTimeout(0);
        resolve(socket);
      } else if (received.includes('-ERR')) {
        socket.destroy();
        reject(new Error(received.slice(received.indexOf('-ERR')).split('\r\n')[0]));
      }
    });
    socket.on('error', (err) => reject(err));
    socket.on('close', () => reject(new Error('closed before PONG')));
  });
}

