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
import type { ClientChannel } from '../relay.js';

export function streamChannel(socket: net.Socket): ClientChannel {
  const decoder = new StreamFrameDecoder();
  let closed = false;
  const close = (code: EkmsError['code'], message: string): void => {
    if (closed) return;
    closed = true;
    socket.end(encodeStreamFrame(encodeError(null, new Err(code, message))));
  };
  return {
    send(frame, done) {
      if (closed) return;
      socket.write(encodeStreamFrame(frame), () => done());
    },
    get bufferedAmount() {
      return socket.writableLength;
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close,
    onFrame(handler) {
      socket.on('data', (chunk: Buffer) => {
        let frames: Uint8Array[];
        try {
          frames = decoder.push(chunk);
        } catch (err) {
          close((err as EkmsError).code, (err as Error).message);
          return;
        }
        for (const f of frames) handler(f);
      });
    },
    onClose(handler) {
      socket.on('close', handler);
    },
  };
}
