/**
 * Byte-stream client transport (Unix socket, or vsock through a socat bridge): 4-byte length-prefixed frames.
 * Closing notices: before the host closes a stream for its own reasons it sends one unauthenticated error
 * frame `{ v:1, id:null, ok:false, error:{ code, … } }` (docs/protocol.md §4) — the only frame the host ever
 * originates; a client treats it as "this connection is over", nothing more.
 */
import type net from 'node:net';
import type { EkmsError } from '../../shared/errors.js';
import { EkmsError as Err } from '../../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../../shared/frame.js';
import { encodeError } from '../../shared/messages.js';
import { CLOSE_GRACE_MS, type ClientChannel } from '../relay.js';

export function streamChannel(socket: net.Socket): ClientChannel {
  const decoder = new StreamFrameDecoder();
  /** We decided to end the connection (no more frames either way). */
  let closed = false;
  let graceTimer: NodeJS.Timeout | undefined;
  // A peer that resets the connection, or that we write to after it went away (EPIPE, write after end), makes the
  // socket emit 'error'. Without a listener that error would crash the host; 'close' follows and ends the relay.
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
    clearTimeout(graceTimer);
  });
  const close = (code: EkmsError['code'], message: string): void => {
    if (closed) return;
    closed = true;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(encodeStreamFrame(encodeError(null, new Err(code, message))));
    // A client that does not read would keep the notice (and the socket) queued for ever, and one that never
    // closes its side would keep it half-open: give it a moment, then drop it. Read (and discard) meanwhile so
    // its FIN is seen even if the relay had paused us.
    graceTimer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    graceTimer.unref();
    socket.resume();
  };
  return {
    send(frame, done) {
      if (closed || !socket.writable) return;
      socket.write(encodeStreamFrame(frame), () => done());
    },
    get bufferedAmount() {
      return socket.writableLength;
    },
    pause: () => {
      if (!closed) socket.pause();
    },
    resume: () => socket.resume(),
    close,
    onFrame(handler) {
      socket.on('data', (chunk: Buffer) => {
        if (closed) return;
        let frames: Uint8Array[];
        try {
          frames = decoder.push(chunk);
        } catch (err) {
          close((err as EkmsError).code, (err as Error).message);
          return;
        }
        for (const f of frames) {
          if (closed) return;
          handler(f);
        }
      });
    },
    onClose(handler) {
      socket.on('close', handler);
    },
  };
}
