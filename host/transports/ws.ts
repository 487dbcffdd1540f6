/**
 * WebSocket client transport: one binary message = one frame (docs/protocol.md §2).
 * `maxPayload` makes `ws` refuse an oversized message before buffering it (close 1009).
 */
import type { WebSocket } from 'ws';
import type { ClientChannel } from '../relay.js';
import { wsCloseCodeFor } from './close-codes.js';

export function wsChannel(ws: WebSocket): ClientChannel {
  // ws reports protocol violations (oversized message, bad opcode, invalid UTF-8 close reason) as 'error' and then
  // closes with the matching code (1009, 1002…). Without a listener the error would crash the host.
  ws.on('error', () => {});
  return {
    send(frame, done) {
      ws.send(frame, { binary: true }, () => done());
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close(code, message) {
      // The close reason is limited to 123 bytes; the code always fits.
      ws.close(wsCloseCodeFor(code), code);
      void message;
    },
    onFrame(handler) {
      ws.on('message', (data, isBinary) => {
        if (!isBinary) {
          ws.close(wsCloseCodeFor('MESSAGE_INVALID'), 'MESSAGE_INVALID');
          return;
        }
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        handler(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
      });
    },
    onClose(handler) {
      ws.on('close', handler);
    },
  };
}
