/**
 * A hostile peer that can still hold a session: a bare WebSocket server standing in for a misbehaving host that
 * has an enclave's identity (design §1 treats the host as an adversary; a session only proves the peer holds an
 * attested identity key, not that it answers honestly). It performs the REAL server handshake (enclave/session.ts
 * `acceptSession`, evidence from the simulated Nitro attestor under a throw-away CA), then lets the test answer
 * each request: `send(body)` seals a response into the session, `sendRaw(frame)` sends bytes as they are
 * (e.g. the host's plaintext closing notice, or a record that is not one).
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import { createSimulatedNitroCa } from '../../attestation/simulated/index.js';
import type { EnclaveTrust } from '../../client/session.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { acceptSession, EnclaveIdentity, type ServerSession } from '../../enclave/session.js';
import { decodeCbor } from '../../shared/cbor.js';

export interface FakeRequest {
  readonly id: number;
  readonly op: string;
  readonly params?: unknown;
}

/** Answers one request: `send` seals a response body into the session; `sendRaw` sends a frame unsealed. */
export type FakeBehaviour = (
  req: FakeRequest,
  send: (body: Uint8Array) => void,
  sendRaw: (frame: Uint8Array) => void,
) => void;

export interface FakeEnclave {
  readonly endpoint: string;
  /** What a client must trust to accept this peer (its simulated root and measurement). */
  readonly trust: EnclaveTrust;
  /** Sessions established so far (one per connection). */
  readonly sessions: () => number;
  close(): Promise<void>;
}

export async function startFakeEnclave(behave: FakeBehaviour): Promise<FakeEnclave> {
  const ca = await createSimulatedNitroCa({ now: new Date() });
  const measurement = randomBytes(48).toString('hex');
  const identity = new EnclaveIdentity(simulatedAttestor('sim-nitro', measurement, ca), Date.now);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  let sessions = 0;
  wss.on('connection', (ws) => {
    let session: ServerSession | undefined;
    // Frames are handled in order: records wait behind the (asynchronous) handshake.
    let queue: Promise<void> = Promise.resolve();
    const sendRaw = (frame: Uint8Array): void => {
      if (ws.readyState === ws.OPEN) ws.send(frame);
    };
    const send = (body: Uint8Array): void => {
      if (session !== undefined && ws.readyState === ws.OPEN) ws.send(session.send.seal(body));
    };
    ws.on('close', () => session?.destroy());
    ws.on('message', (d: Buffer) => {
      const frame = new Uint8Array(d);
      queue = queue.then(async () => {
        if (session === undefined) {
          const accepted = await acceptSession(identity, frame);
          session = accepted.session;
          sessions += 1;
          sendRaw(accepted.reply);
          return;
        }
        const req = decodeCbor(session.receive.open(frame)) as FakeRequest;
        behave(req, send, sendRaw);
      });
      queue = queue.catch(() => ws.terminate());
    });
  });
  return {
    endpoint: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`,
    trust: { measurement, roots: [ca.certificates[0]], allowSimulated: true },
    sessions: () => sessions,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
