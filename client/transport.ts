/**
 * Client-side transports: WebSocket (`ws://…`) and byte streams (`unix:PATH`). Both deliver whole frame bodies
 * and report why the connection ended as a typed error.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { type EkmsError, FrameError, fromWireError, TransportError } from '../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../shared/frame.js';
import { LIMITS } from '../shared/limits.js';

export interface ClientTransport {
  send(frame: Uint8Array): void;
  close(): void;
}

export interface TransportHandlers {
  onFrame(frame: Uint8Array): void;
  /** Called once, with the reason the connection ended. */
  onClose(reason: EkmsError): void;
}

/** Maps a WebSocket close (code, reason) to a typed error (docs/protocol.md §4). */
export function errorForWsClose(code: number, reason: string): EkmsError {
  if (/^[A-Z][A-Z0-9_]{2,63}$/.test(reason)) {
    if (reason === 'FRAME_TOO_LARGE')
      return new FrameError('FRAME_TOO_LARGE', 'the host refused an oversized frame');
    return fromWireError({
      code: reason,
      message: `the host closed the connection: ${reason}`,
      retriable: code === 1013 || code === 1001,
    });
  }
  if (code === 1009) return new FrameError('FRAME_TOO_LARGE', 'the peer refused an oversized frame');
  return new TransportError('CONNECTION_CLOSED', `connection closed (${code}${reason ? `: ${reason}` : ''})`);
}

function connectWs(url: string, h: TransportHandlers, timeoutMs: number): Promise<ClientTransport> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      maxPayload: LIMITS.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    });
    let opened = false;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      opened = true;
      resolve({
        send: (frame) => ws.send(frame, { binary: true }),
        close: () => ws.close(1000),
      });
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) h.onFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
    ws.on('error', (err) => {
      if (!opened)
        reject(new TransportError('CONNECTION_FAILED', `cannot connect to ${url}: ${err.message}`));
    });
    ws.on('close', (code, reason) => {
      if (opened) h.onClose(errorForWsClose(code, reason.toString('utf8')));
      else reject(new TransportError('CONNECTION_FAILED', `cannot connect to ${url} (closed ${code})`));
    });
  });
}

function connectStream(path: string, h: TransportHandlers, timeoutMs: number): Promise<ClientTransport> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const decoder = new StreamFrameDecoder();
    let opened = false;
    let ended: EkmsError | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TransportError('CONNECTION_FAILED', `cannot connect to unix:${path}: timeout`));
    }, timeoutMs);
    socket.on('connect', () => {
      opened = true;
      clearTimeout(timer);
      resolve({ send: (frame) => socket.write(encodeStreamFrame(frame)), close: () => socket.end() });
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        ended = err as EkmsError;
        socket.destroy();
        return;
      }
      for (const f of frames) h.onFrame(f);
    });
    socket.on('error', (err) => {
      if (!opened) {
        clearTimeout(timer);
        reject(new TransportError('CONNECTION_FAILED', `cannot connect to unix:${path}: ${err.message}`));
      }
    });
    socket.on('close', () => {
      if (opened) h.onClose(ended ?? new TransportError('CONNECTION_CLOSED', 'connection closed'));
    });
  });
}

/**
 * Opens a transport to `endpoint` (`ws://…` or `unix:PATH`).
 * @throws TransportError CONNECTION_FAILED
 */
export function openTransport(
  endpoint: string,
  h: TransportHandlers,
  timeoutMs: number,
): Promise<ClientTransport> {
  if (endpoint.startsWith('unix:')) return connectStream(endpoint.slice(5), h, timeoutMs);
  if (endpoint.startsWith('ws://') || endpoint.startsWith('wss://')) return connectWs(endpoint, h, timeoutMs);
  return Promise.reject(
    new TransportError('CONNECTION_FAILED', `unsupported endpoint "${endpoint}" (ws://… or unix:PATH)`),
  );
}
