/**
 * WebSocket client transport: one binary message = one frame (docs/protocol.md §2).
 * `maxPayload` makes `ws` refuse an oversized message before buffering it (close 1009).
 */
import type { WebSocket } from 'ws';
import { CLOSE_GRACE_MS, type ClientChannel } from '../relay.js';
import { wsCloseCodeFor } from './close-codes.js';

export function wsChannel(ws: WebSocket): ClientChannel {
  // ws reports protocol violations (oversized message, bad opcode, invalid UTF-8 close reason) as 'error' and then
  // closes with the matching code (1009, 1002…). Without a listener the error would crash the host.
  ws.on('error', () => {});
  let closing = false;
  let graceTimer: NodeJS.Timeout | undefined;
  ws.on('close', () => clearTimeout(graceTimer));
  const close = (code: number, reason: string): void => {
    if (closing) return;
    closing = true;
    if (ws.readyState === ws.CLOSED) return;
    ws.close(code, reason);
    // The peer's closing handshake has to be read: a channel paused by backpressure (or while it waited for the
    // enclave) would never see it. Frames read from now on are dropped. A peer that does not answer, or whose
    // receive buffer is full so that our close frame cannot even leave, is cut off after the grace period
    // (ws's own close timeout is 30 s).
    ws.resume();
    graceTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    graceTimer.unref();
  };
  return {
    send(frame, done) {
      if (closing) return;
      ws.send(frame, { binary: true }, () => done());
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    pause: () => {
      if (!closing) ws.pause();
    },
    resume: () => ws.resume(),
    close(code) {
      // The close reason is limited to 123 bytes: only the stable code travels; the code always fits.
      close(wsCloseCodeFor(code), code);
    },
    onFrame(handler) {
      ws.on('message', (data, isBinary) => {
        if (closing) return;
        if (!isBinary) {
          close(wsCloseCodeFor('MESSAGE_INVALID'), 'MESSAGE_INVALID');
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
