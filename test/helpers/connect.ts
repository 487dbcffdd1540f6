/**
 * Connecting tests to a service now that every connection is an attested session (docs/protocol.md §5):
 * - `connectTo(host)`: the SDK with the in-process test host's trust, authenticated as its first admin;
 * - `connectProfile(path)`: the SDK with the profile `ekms start` wrote (its trust and admin key);
 * - `rawWsSession` / `rawStreamSession`: a session by hand, for tests that write records the SDK would not
 *   (pipelining thousands of requests, never reading, resetting mid-response).
 */
import net from 'node:net';
import WebSocket from 'ws';
import { loadProfile, profileConnectOptions } from '../../client/profile.js';
import { type ConnectOptions, connect, type EkmsClient } from '../../client/sdk.js';
import { type ClientSession, type EnclaveTrust, startClientHandshake } from '../../client/session.js';
import type { Host } from '../../host/host.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../../shared/frame.js';
import { adminPrincipal } from './service.js';

export interface TestConnectOptions extends ConnectOptions {
  /** Do not authenticate: the connection stays anonymous inside its session. */
  readonly anonymous?: boolean;
}

function withPrincipal(
  base: ConnectOptions,
  opts: TestConnectOptions,
  principal: ConnectOptions['principal'],
): ConnectOptions {
  const { anonymous, ...rest } = opts;
  const merged: ConnectOptions = { ...base, ...rest };
  if (anonymous === true) {
    const { principal: _dropped, ...anon } = merged;
    return anon;
  }
  if (merged.principal === undefined && principal !== undefined) return { ...merged, principal };
  return merged;
}

/** Connect options for a test host: its trust, authenticated as `adminPrincipal()` unless told otherwise. */
export function hostConnectOptions(host: Pick<Host, 'trust'>, opts: TestConnectOptions = {}): ConnectOptions {
  return withPrincipal({ trust: host.trust }, opts, adminPrincipal());
}

/** `connect` to a test host (see `hostConnectOptions`). */
export function connectTo(
  host: Pick<Host, 'endpoint' | 'trust'>,
  opts: TestConnectOptions = {},
): Promise<EkmsClient> {
  return connect(host.endpoint, hostConnectOptions(host, opts));
}

/** The endpoint and connect options of the profile `ekms start` wrote (authenticated as its admin). */
export function profileConnect(
  profilePath: string,
  opts: TestConnectOptions = {},
): { endpoint: string; trust: EnclaveTrust; options: ConnectOptions } {
  const { profile, dir } = loadProfile(profilePath);
  const fromProfile = profileConnectOptions(profile, dir);
  return {
    endpoint: profile.endpoint,
    trust: fromProfile.trust,
    options: withPrincipal({ trust: fromProfile.trust }, opts, fromProfile.principal),
  };
}

/** `connect` to the service of a profile (see `profileConnect`). */
export function connectProfile(profilePath: string, opts: TestConnectOptions = {}): Promise<EkmsClient> {
  const { endpoint, options } = profileConnect(profilePath, opts);
  return connect(endpoint, options);
}

/** Opens a WebSocket and runs the client handshake by hand; the session is anonymous. */
export async function rawWsSession(
  endpoint: string,
  trust: EnclaveTrust,
): Promise<{ ws: WebSocket; session: ClientSession }> {
  const ws = new WebSocket(endpoint, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const hs = startClientHandshake(trust);
  const serverHello = await new Promise<Uint8Array>((resolve, reject) => {
    ws.once('message', (d: Buffer) => resolve(new Uint8Array(d)));
    ws.once('close', (code) => reject(new Error(`closed (${code}) during the handshake`)));
    ws.send(hs.clientHello);
  });
  ws.removeAllListeners('close');
  return { ws, session: hs.finish(serverHello) };
}

/**
 * Connects to a stream endpoint (the host's `unix:` listener, or the enclave's own socket) and runs the client
 * handshake by hand. The decoder is returned in its state after the ServerHello; the socket is returned paused.
 */
export async function rawStreamSession(
  path: string,
  trust: EnclaveTrust,
): Promise<{ socket: net.Socket; session: ClientSession; decoder: StreamFrameDecoder }> {
  const socket = net.connect({ path });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const decoder = new StreamFrameDecoder();
  const hs = startClientHandshake(trust);
  const serverHello = await new Promise<Uint8Array>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      const [frame] = decoder.push(chunk);
      if (frame === undefined) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(frame);
    };
    const onClose = (): void => reject(new Error('closed during the handshake'));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(encodeStreamFrame(hs.clientHello));
  });
  // Paused so that no reply is lost before the caller listens: call `socket.resume()` after adding a listener.
  socket.pause();
  return { socket, session: hs.finish(serverHello), decoder };
}
