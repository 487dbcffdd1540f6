/**
 * Relays one client connection to its own stream to the enclave (design §1).
 *
 * The host treats frame bodies as opaque bytes: it checks sizes, re-frames them for the enclave stream and
 * back, and never decodes them (once the attested session lands they are ciphertext anyway). Backpressure
 * runs both ways: a full enclave socket pauses the client, and a client that does not read pauses the
 * enclave stream for that connection only.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { type EkmsError, TransportError } from '../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../shared/frame.js';
import { LIMITS } from '../shared/limits.js';

/**
 * How long a connection the host is closing may take to say goodbye (read our notice, answer the closing
 * handshake) before it is cut off. Bounds `Host.close()` and the life of sockets whose peer stopped reading.
 */
export const CLOSE_GRACE_MS = 2_000;

/** A client connection, whatever its transport. */
export interface ClientChannel {
  /** Sends one frame body; `done` runs once the transport has taken it. */
  send(frame: Uint8Array, done: () => void): void;
  /** Bytes queued towards the client and not yet flushed. */
  readonly bufferedAmount: number;
  pause(): void;
  resume(): void;
  /** Ends the connection telling the client why (a stable code). */
  close(code: EkmsError['code'], message: string): void;
  onFrame(handler: (frame: Uint8Array) => void): void;
  onClose(handler: () => void): void;
}

export interface RelayCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Opens a stream to the enclave's Unix socket.
 * @throws TransportError ENCLAVE_UNAVAILABLE when nothing listens there (the enclave died or is restarting).
 */
export function connectUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path, allowHalfOpen: false });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      socket.destroy();
      reject(new TransportError('ENCLAVE_UNAVAILABLE', `cannot reach the enclave: ${err.message}`));
    });
  });
}

/**
 * Relays between `client` and its own connected enclave stream until either side closes.
 */
export function relayToEnclave(
  client: ClientChannel,
  upstream: net.Socket,
  log: Logger,
  counters: RelayCounters,
  tap?: (direction: 'client-to-enclave' | 'enclave-to-client', frame: Uint8Array) => void,
): void {
  const decoder = new StreamFrameDecoder();
  let clientClosed = false;
  let upstreamPaused = false;

  upstream.on('drain', () => client.resume());
  // The enclave never half-closes a stream on purpose: EOF means it ended or died. Destroy at once, because
  // frames still queued towards a dead peer would otherwise hold the socket open and 'close' would never come.
  upstream.on('end', () => upstream.destroy());

  client.onFrame((frame) => {
    counters.framesIn += 1;
    counters.bytesIn += frame.length;
    tap?.('client-to-enclave', frame);
    if (upstream.destroyed) return;
    if (!upstream.writableCorked) {
      // Client frames relayed in one tick go to the enclave in one syscall.
      upstream.cork();
      process.nextTick(() => upstream.uncork());
    }
    if (!upstream.write(encodeStreamFrame(frame))) client.pause();
  });

  upstream.on('data', (chunk: Buffer) => {
    let frames: Uint8Array[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      // The enclave never sends oversized frames; treat it as a broken enclave stream.
      log.error({ code: (err as EkmsError).code }, 'enclave stream broken');
      upstream.destroy();
      return;
    }
    for (const f of frames) {
      counters.framesOut += 1;
      counters.bytesOut += f.length;
      tap?.('enclave-to-client', f);
      client.send(f, () => {
        if (upstreamPaused && client.bufferedAmount < LIMITS.relayHighWaterBytes / 2) {
          upstreamPaused = false;
          upstream.resume();
        }
      });
    }
    if (!upstreamPaused && client.bufferedAmount > LIMITS.relayHighWaterBytes) {
      upstreamPaused = true;
      upstream.pause();
    }
  });

  upstream.on('error', (err) => {
    log.warn({ err: err.message }, 'enclave stream error');
  });
  upstream.on('close', () => {
    if (clientClosed) return;
    clientClosed = true;
    // The client may be paused by backpressure from the dead stream: resume so the close handshake can finish.
    client.resume();
    const e = new TransportError('ENCLAVE_UNAVAILABLE', 'the enclave stream closed; retry shortly');
    client.close(e.code, e.message);
  });
  client.onClose(() => {
    clientClosed = true;
    upstream.destroy();
  });
}
