/**
 * Frame codec (docs/protocol.md §2).
 *
 * On byte streams (Unix socket, vsock) a frame is a 4-byte big-endian unsigned length followed by that
 * many bytes holding exactly one CBOR value. On WebSocket a frame is one binary message (the message
 * boundary is the length). The length is checked against `LIMITS.maxFrameBytes` before a single byte of
 * the body is buffered, so a hostile peer cannot make us allocate more than one maximum frame.
 */
import { allocUninitialized } from './bytes.js';
import { FrameError } from './errors.js';
import { LIMITS } from './limits.js';

/** Bytes of the stream length prefix. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Prefixes `body` with its length for a byte stream.
 * @throws FrameError FRAME_TOO_LARGE when the body exceeds `maxFrameBytes`.
 */
export function encodeStreamFrame(
  body: Uint8Array,
  maxFrameBytes: number = LIMITS.maxFrameBytes,
): Uint8Array {
  if (body.length > maxFrameBytes) {
    throw new FrameError(
      'FRAME_TOO_LARGE',
      `frame of ${body.length} bytes exceeds the limit of ${maxFrameBytes}`,
    );
  }
  const out = allocUninitialized(FRAME_HEADER_BYTES + body.length);
  const n = body.length;
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Incremental decoder for length-prefixed frames. Feed it chunks as they arrive; it returns the complete
 * frames. After it throws, the stream has lost sync and must be closed.
 *
 * Memory is bounded: at most one frame body (≤ maxFrameBytes) plus one chunk is held.
 */
export class StreamFrameDecoder {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Length of the frame being assembled, or -1 while its header is incomplete. */
  private expected = -1;
  private failed = false;

  constructor(private readonly maxFrameBytes: number = LIMITS.maxFrameBytes) {}

  /** Bytes held but not yet returned as a frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Adds a chunk and returns every frame it completes (possibly none).
   * @throws FrameError FRAME_TOO_LARGE when a header announces more than `maxFrameBytes`.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) throw new FrameError('FRAME_MALFORMED', 'frame stream already failed');
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Uint8Array[] = [];
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const header = this.take(FRAME_HEADER_BYTES);
        const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
        if (length > this.maxFrameBytes) {
          this.failed = true;
          this.chunks.length = 0;
          this.buffered = 0;
          throw new FrameError(
            'FRAME_TOO_LARGE',
            `frame header announces ${length} bytes, above the limit of ${this.maxFrameBytes}`,
          );
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) break;
      frames.push(this.take(this.expected));
      this.expected = -1;
    }
    return frames;
  }

  /**
   * Call at end of stream: a partial frame left over means the peer truncated it.
   * @throws FrameError FRAME_TRUNCATED
   */
  end(): void {
    if (this.buffered > 0 || this.expected >= 0) {
      throw new FrameError(
        'FRAME_TRUNCATED',
        `stream ended inside a frame (${this.buffered} of ${Math.max(this.expected, FRAME_HEADER_BYTES)} bytes)`,
      );
    }
  }

  /** Removes and returns the first `n` buffered bytes (n ≤ buffered). Copies only when a frame spans chunks. */
  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = allocUninitialized(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const need = n - filled;
      if (c.length <= need) {
        out.set(c, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        out.set(c.subarray(0, need), filled);
        this.chunks[0] = c.subarray(need);
        filled += need;
      }
    }
    this.buffered -= n;
    return out;
  }
}
