/**
 * Review of the attested session and attestation-gated release (docs/protocol.md §5–§6), in one process: each
 * test names a defect found in review and fails without its fix.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  createSimulatedNitroCa,
  createSimulatedSnpCa,
  type SimulatedNitroCa,
  type SimulatedSnpCa,
} from '../../attestation/simulated/index.js';
import { openRelease } from '../../client/release.js';
import { type EnclaveTrust, startClientHandshake } from '../../client/session.js';
import { type Attestor, simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { Keystore } from '../../enclave/keystore/keystore.js';
import { adminOnly } from '../../enclave/kms/authorizer.js';
import { wrapForRecipient } from '../../enclave/kms/release.js';
import { PrincipalRegistry } from '../../enclave/principals.js';
import { type EnclaveServer, startEnclaveServer } from '../../enclave/server.js';
import { acceptSession, EnclaveIdentity, EVIDENCE_REFRESH_MS } from '../../enclave/session.js';
import { decodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../../shared/frame.js';
import { encodeClientHello, RecordProtector } from '../../shared/session.js';
import { xwingKeygen } from '../../shared/xwing.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

const MEASUREMENT = 'ab'.repeat(48);
const silent = pino({ level: 'silent' });
let nitroCa: SimulatedNitroCa;
let snpCa: SimulatedSnpCa;

beforeAll(async () => {
  nitroCa = await createSimulatedNitroCa({ now: new Date() });
  snpCa = await createSimulatedSnpCa({ now: new Date() });
}, 60_000);

async function codeOf(fn: () => unknown | Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

function spki(): Uint8Array {
  const { publicKey } = generateKeyPairSync('ed25519');
  return new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
}

describe('principals: the first admin is pinned once', () => {
  it('refuses to pin a host-supplied admin when the sealed principals are missing but key records exist (SEALED_BLOB_ROLLBACK)', async () => {
    const storage = new MemoryStorage();
    const rootKey = new Uint8Array(32).fill(7);
    const owner = spki();
    const ks = await Keystore.open({ storage, rootKey, now: Date.now });
    await PrincipalRegistry.load({ storage, rootKey, admin: owner, logger: silent });
    await ks.create({ description: 'precious', suite: 1, rotationPeriodDays: null, releasePolicy: null });
    ks.close();
    // The host drops the sealed principals and restarts the enclave with its own --admin-key.
    expect(storage.drop('principals')).toBe(true);
    const attacker = spki();
    await Keystore.open({ storage, rootKey, now: Date.now });
    expect(
      await codeOf(() => PrincipalRegistry.load({ storage, rootKey, admin: attacker, logger: silent })),
    ).toBe('SEALED_BLOB_ROLLBACK');
    expect(storage.has('principals')).toBe(false);
  });

  it('still pins the first admin on a store without key records (first start, or a crash before any key)', async () => {
    const storage = new MemoryStorage();
    const rootKey = new Uint8Array(32).fill(8);
    await Keystore.open({ storage, rootKey, now: Date.now });
    const r = await PrincipalRegistry.load({ storage, rootKey, admin: spki(), logger: silent });
    expect(r.size).toBe(1);
    expect(storage.has('principals')).toBe(true);
  });
});

describe('openRelease checks what the signature covers', () => {
  it('refuses a release whose unsigned ciphertextBlob differs from the signed statement (MESSAGE_INVALID)', () => {
    const attestor = simulatedAttestor('sim-nitro', MEASUREMENT, nitroCa);
    const identity = new EnclaveIdentity(attestor, Date.now);
    const recipient = xwingKeygen();
    const workload = {
      claims: {} as never,
      recipientPublicKey: recipient.publicKey,
    };
    const ctx = { workload, identity, now: Date.now, requestDigest: new Uint8Array(32) };
    const blob = new Uint8Array(64).fill(1);
    const wrapped = wrapForRecipient(
      ctx,
      workload,
      { op: 'GenerateDataKey', keyId: 'k1', keyVersion: 1, ciphertextBlob: blob },
      new Uint8Array(32).fill(9),
    );
    const release = {
      keyId: 'k1',
      keyVersion: 1,
      release: wrapped['release'] as Uint8Array,
      signature: wrapped['signature'] as Uint8Array,
    };
    // The genuine release opens.
    const ok = openRelease({ ...release, ciphertextBlob: blob }, recipient, identity.publicKey);
    expect(ok.material).toEqual(new Uint8Array(32).fill(9));
    // A swapped (or dropped) blob beside the signed statement is refused.
    const swapped = new Uint8Array(64).fill(2);
    expect(
      codeSync(() => openRelease({ ...release, ciphertextBlob: swapped }, recipient, identity.publicKey)),
    ).toBe('MESSAGE_INVALID');
    expect(codeSync(() => openRelease(release, recipient, identity.publicKey))).toBe('MESSAGE_INVALID');
  });
});

function codeSync(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

describe('the client session exposes the attested identity key', () => {
  it('SEV-SNP: a client can get the identity key that openRelease needs (the claims carry none)', async () => {
    const identity = new EnclaveIdentity(simulatedAttestor('sim-sev-snp', MEASUREMENT, snpCa), Date.now);
    const hs = startClientHandshake({ measurement: MEASUREMENT, roots: [snpCa.ark], allowSimulated: true });
    const { reply } = await acceptSession(identity, hs.clientHello);
    const session = hs.finish(reply);
    expect(session.claims.type).toBe('sev-snp');
    expect(Buffer.from(session.identity).equals(Buffer.from(identity.publicKey))).toBe(true);
  });
});

describe('evidence refresh', () => {
  it('keeps serving the cached evidence when a refresh fails, instead of refusing every handshake', async () => {
    let t = Date.now();
    const real = simulatedAttestor('sim-nitro', MEASUREMENT, nitroCa);
    let failing = false;
    const attestor: Attestor = {
      ...real,
      evidence: (b, k, n) => (failing ? Promise.reject(new Error('nsm busy')) : real.evidence(b, k, n)),
    };
    const identity = new EnclaveIdentity(attestor, () => t);
    const first = await identity.evidence();
    failing = true;
    t += EVIDENCE_REFRESH_MS + 1000;
    expect(await identity.evidence()).toBe(first);
    // A handshake still succeeds (the client judges the evidence's age itself).
    const trust: EnclaveTrust = {
      measurement: MEASUREMENT,
      roots: [nitroCa.certificates[0]],
      allowSimulated: true,
    };
    const hs = startClientHandshake(trust, () => t);
    const { reply } = await acceptSession(identity, hs.clientHello);
    expect(hs.finish(reply).claims.measurement).toBe(MEASUREMENT);
    // Once the attestor recovers, the evidence is renewed.
    failing = false;
    const renewed = await identity.evidence();
    expect(renewed).not.toBe(first);
  });
});

describe("the enclave's request server after it ended a connection", () => {
  let server: EnclaveServer;
  let dir: string;
  let path: string;
  let trust: EnclaveTrust;
  let signatures = 0;

  class CountingIdentity extends EnclaveIdentity {
    override signTranscript(th: Uint8Array): Uint8Array {
      signatures++;
      return super.signTranscript(th);
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-review-session-'));
    path = join(dir, 'enclave.sock');
    const attestor = simulatedAttestor('sim-nitro', MEASUREMENT, nitroCa);
    trust = { measurement: MEASUREMENT, roots: [nitroCa.certificates[0]], allowSimulated: true };
    const identity = new CountingIdentity(attestor, Date.now);
    await identity.evidence();
    server = await startEnclaveServer({
      socketPath: path,
      logger: silent,
      context: {
        attestor,
        now: () => Date.now(),
        startedAt: Date.now(),
        keystore: undefined,
        authorizer: adminOnly,
        rootKeySource: null,
        identity,
        principals: new PrincipalRegistry([]),
      },
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A peer that keeps its half of the stream open after the enclave ends its own (as a hostile host may). */
  async function halfOpenPeer(): Promise<{ socket: net.Socket; frames: Uint8Array[]; ended: Promise<void> }> {
    const socket = net.connect({ path, allowHalfOpen: true });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const decoder = new StreamFrameDecoder();
    const frames: Uint8Array[] = [];
    socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    return { socket, frames, ended };
  }

  it('runs no more handshakes on a connection it ended after refusing a ClientHello', async () => {
    const { socket, frames, ended } = await halfOpenPeer();
    onTestFinished(() => void socket.destroy());
    const bad = startClientHandshake(trust);
    const refused = encodeClientHello({
      suites: ['EKMS-SESSION-v0/none'],
      nonce: new Uint8Array(32),
      share: (decodeCbor(bad.clientHello) as { share: Uint8Array }).share,
    });
    socket.write(encodeStreamFrame(refused));
    await ended;
    expect(frames).toHaveLength(1);
    const before = signatures;
    for (let i = 0; i < 5; i++) socket.write(encodeStreamFrame(startClientHandshake(trust).clientHello));
    await new Promise((r) => setTimeout(r, 300));
    expect(signatures).toBe(before);
    socket.destroy();
  });

  it('zeroes the session keys when it ends the session, not only when the peer closes its half', async () => {
    const destroyed = vi.spyOn(RecordProtector.prototype, 'destroy');
    try {
      const { socket, frames, ended } = await halfOpenPeer();
      onTestFinished(() => void socket.destroy());
      const hs = startClientHandshake(trust);
      socket.write(encodeStreamFrame(hs.clientHello));
      while (frames.length === 0) await new Promise((r) => setTimeout(r, 10));
      hs.finish(frames[0]!);
      const before = destroyed.mock.calls.length;
      // A tampered record: the enclave answers SESSION_RECORD_INVALID and ends the session.
      socket.write(encodeStreamFrame(new Uint8Array(40).fill(3)));
      await ended;
      await new Promise((r) => setTimeout(r, 100));
      // Both record protectors (receive, send) were destroyed although our half is still open.
      expect(destroyed.mock.calls.length - before).toBeGreaterThanOrEqual(2);
      socket.destroy();
    } finally {
      destroyed.mockRestore();
    }
  });
});

describe("the enclave's request server during a handshake", () => {
  it('stops reading while a handshake waits for evidence: frames behind it are not buffered without bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ekms-review-hs-'));
    const path = join(dir, 'enclave.sock');
    const real = simulatedAttestor('sim-nitro', MEASUREMENT, nitroCa);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // The first evidence waits (as a slow attestor would): the handshake stays pending meanwhile.
    const attestor: Attestor = {
      ...real,
      evidence: async (b, k, n) => {
        await gate;
        return real.evidence(b, k, n);
      },
    };
    const server = await startEnclaveServer({
      socketPath: path,
      logger: silent,
      context: {
        attestor,
        now: () => Date.now(),
        startedAt: Date.now(),
        keystore: undefined,
        authorizer: adminOnly,
        rootKeySource: null,
        identity: new EnclaveIdentity(attestor, Date.now),
        principals: new PrincipalRegistry([]),
      },
    });
    const socket = net.connect({ path });
    try {
      await new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      socket.on('error', () => {});
      const trust: EnclaveTrust = {
        measurement: MEASUREMENT,
        roots: [nitroCa.certificates[0]],
        allowSimulated: true,
      };
      socket.write(encodeStreamFrame(startClientHandshake(trust).clientHello));
      await new Promise((r) => setTimeout(r, 100));
      // 64 MiB of (would-be record) frames behind the pending handshake.
      const frame = encodeStreamFrame(new Uint8Array(256 * 1024 - 64).fill(5));
      for (let i = 0; i < 256; i++) socket.write(frame);
      await new Promise((r) => setTimeout(r, 1000));
      // The enclave read at most a little of it: the rest still waits in our own write buffer.
      expect(socket.writableLength).toBeGreaterThan(48 * 1024 * 1024);
      release();
    } finally {
      release();
      socket.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
