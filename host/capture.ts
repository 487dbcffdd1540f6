/**
 * Traffic capture (`ekms start --capture FILE`): the host records every frame it relays, in both directions, so
 * that anyone can check what an untrusted host sees. Inside an attested session every frame after the handshake
 * is ciphertext under keys the host never has (docs/protocol.md §5), so a capture holds no key or plaintext; the
 * multi-party demo (examples/multi-party-analytics) and the e2e tests search captures to prove it.
 *
 * File format (version 1; integers big-endian), append-only:
 *
 *   header   "EKCP" ‖ 0x01                                  once, at offset 0
 *   record   connection (u32) ‖ direction (u8) ‖ length (u32) ‖ frame (length bytes)
 *
 * direction 0 = client → enclave, 1 = enclave → client. `connection` numbers the client connections of one host
 * run from 1. Writes are buffered (a WriteStream); `close` flushes them. A capture is a diagnostic mode: it costs
 * a copy per frame, and the file grows without bound, so it is off unless asked for.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { ProtocolError } from '../shared/errors.js';

export const CAPTURE_MAGIC = Uint8Array.of(0x45, 0x4b, 0x43, 0x50, 0x01);

export type CaptureDirection = 'client-to-enclave' | 'enclave-to-client';

export interface CapturedFrame {
  readonly connection: number;
  readonly direction: CaptureDirection;
  readonly frame: Uint8Array;
}

export interface TrafficCapture {
  record(connection: number, direction: CaptureDirection, frame: Uint8Array): void;
  /** Flushes and closes the file. */
  close(): Promise<void>;
}

/** Opens (truncates) a capture file and writes its header. */
export function openTrafficCapture(path: string): TrafficCapture {
  const out: WriteStream = createWriteStream(path, { flags: 'w', mode: 0o600 });
  let failed: Error | undefined;
  out.on('error', (err) => {
    failed = err;
  });
  out.write(CAPTURE_MAGIC);
  return {
    record(connection, direction, frame) {
      if (failed !== undefined || out.destroyed) return;
      const head = Buffer.alloc(9);
      head.writeUInt32BE(connection >>> 0, 0);
      head.writeUInt8(direction === 'client-to-enclave' ? 0 : 1, 4);
      head.writeUInt32BE(frame.length, 5);
      out.write(head);
      // A copy: the relay may reuse or zero the frame's buffer after handing it on.
      out.write(Buffer.from(frame));
    },
    close() {
      return new Promise((resolve, reject) => {
        if (out.destroyed || out.closed) {
          resolve();
          return;
        }
        out.end(() => (failed === undefined ? resolve() : reject(failed)));
      });
    },
  };
}

/**
 * Parses a capture file's bytes.
 * @throws ProtocolError MESSAGE_INVALID for a file without the header or with a truncated record
 */
export function parseTrafficCapture(bytes: Uint8Array): CapturedFrame[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < CAPTURE_MAGIC.length || !buf.subarray(0, 5).equals(Buffer.from(CAPTURE_MAGIC))) {
    throw new ProtocolError('MESSAGE_INVALID', 'not an ekms traffic capture (EKCP version 1)');
  }
  const frames: CapturedFrame[] = [];
  let at = CAPTURE_MAGIC.length;
  while (at < buf.length) {
    if (buf.length - at < 9) throw new ProtocolError('MESSAGE_INVALID', `truncated capture record at ${at}`);
    const connection = buf.readUInt32BE(at);
    const dir = buf.readUInt8(at + 4);
    const length = buf.readUInt32BE(at + 5);
    if (dir > 1) throw new ProtocolError('MESSAGE_INVALID', `unknown capture direction ${dir} at ${at}`);
    if (buf.length - at - 9 < length) {
      throw new ProtocolError('MESSAGE_INVALID', `truncated capture record at ${at}`);
    }
    frames.push({
      connection,
      direction: dir === 0 ? 'client-to-enclave' : 'enclave-to-client',
      frame: new Uint8Array(buf.subarray(at + 9, at + 9 + length)),
    });
    at += 9 + length;
  }
  return frames;
}
