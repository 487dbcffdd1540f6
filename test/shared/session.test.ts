/**
 * The attested session (shared/session.ts, enclave/session.ts, client/session.ts) in one process: the real
 * handshake code on both ends with a simulated attestor, and every check's negative test (style §5).
 */
import { createHash } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha384 } from '@noble/hashes/sha2.js';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createSimulatedNitroCa,
  createSimulatedSnpCa,
  type SimulatedNitroCa,
  type SimulatedSnpCa,
} from '../../attestation/simulated/index.js';
import { type EnclaveTrust, startClientHandshake } from '../../client/session.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { acceptSession, EnclaveIdentity } from '../../enclave/session.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import {
  decodeClientHello,
  decodeServerHello,
  deriveSessionKeys,
  encodeServerHello,
  identityBinding,
  RecordProtector,
  SessionSuite,
  transcriptHash,
} from '../../shared/session.js';

const MEASUREMENT = 'ab'.repeat(48);
const HOUR = 3_600_000;
let nitroCa: SimulatedNitroCa;
let snpCa: SimulatedSnpCa;

beforeAll(async () => {
  nitroCa = await createSimulatedNitroCa({ now: new Date() });
  snpCa = await createSimulatedSnpCa({ now: new Date() });
}, 60_000);

function trustFor(root: string, overrides: Partial<EnclaveTrust> = {}): EnclaveTrust {
  return { measurement: MEASUREMENT, roots: [root], allowSimulated: true, ...overrides };
}

function nitroIdentity(
  options: { debug?: boolean; measurement?: string; now?: () => number } = {},
): EnclaveIdentity {
  const attestor = simulatedAttestor('sim-nitro', options.measurement ?? MEASUREMENT, nitroCa, {
    ...(options.debug ? { debug: true } : {}),
  });
  return new EnclaveIdentity(attestor, options.now ?? Date.now);
}

async function codeOf(fn: () => unknown | Promise<unknown>): Promise<{ code: string; reason?: unknown }> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof EkmsError) return { code: err.code, reason: err.details?.['reason'] };
    throw err;
  }
  return { code: 'NO_ERROR' };
}

/** A full handshake; returns both ends. */
async function handshake(identity: EnclaveIdentity, trust: EnclaveTrust, now: () => number = Date.now) {
  const client = startClientHandshake(trust, now);
  const { reply, session: server } = await acceptSession(identity, client.clientHello);
  const session = client.finish(reply);
  return { client: session, server, reply, clientHello: client.clientHello };
}

describe('handshake', () => {
  it('establishes a session (Nitro): both ends derive the same keys; records flow both ways', async () => {
    const { client, server } = await handshake(nitroIdentity(), trustFor(nitroCa.certificates[0]));
    expect(Buffer.from(client.binder).equals(Buffer.from(server.binder))).toBe(true);
    expect(client.claims.type).toBe('nitro');
    expect(client.claims.measurement).toBe(MEASUREMENT);
    const req = new TextEncoder().encode('request');
    expect(new TextDecoder().decode(server.receive.open(client.send.seal(req)))).toBe('request');
    expect(new TextDecoder().decode(client.receive.open(server.send.seal(req)))).toBe('request');
  });

  it('establishes a session (SEV-SNP): the report binds the identity in REPORT_DATA', async () => {
    const identity = new EnclaveIdentity(simulatedAttestor('sim-sev-snp', MEASUREMENT, snpCa), Date.now);
    const { client } = await handshake(identity, trustFor(snpCa.ark));
    expect(client.claims.type).toBe('sev-snp');
    if (client.claims.type === 'sev-snp') {
      expect(client.claims.reportData).toBe(
        Buffer.from(identityBinding(identity.publicKey)).toString('hex') + '0'.repeat(64),
      );
    }
  });

  it('each handshake is fresh: a ServerHello replayed to another ClientHello fails (SESSION_SIGNATURE_INVALID)', async () => {
    const identity = nitroIdentity();
    const trust = trustFor(nitroCa.certificates[0]);
    const first = await handshake(identity, trust);
    const second = startClientHandshake(trust);
    expect((await codeOf(() => second.finish(first.reply))).code).toBe('SESSION_SIGNATURE_INVALID');
  });

  it('a downgrade (the host edits the suite offer) is detected: SESSION_SIGNATURE_INVALID', async () => {
    const identity = nitroIdentity();
    const client = startClientHandshake(trustFor(nitroCa.certificates[0]));
    const hello = decodeCbor(client.clientHello) as Record<string, unknown>;
    const edited = encodeCbor({
      ...hello,
      suites: [SessionSuite.XWingHkdfSha384Aes256GcmEd25519V1, 'EKMS-WEAK'],
    });
    const { reply } = await acceptSession(identity, edited);
    expect((await codeOf(() => client.finish(reply))).code).toBe('SESSION_SIGNATURE_INVALID');
  });

  it('a suite the client did not offer is refused (SESSION_SUITE_UNSUPPORTED), on both ends', async () => {
    const identity = nitroIdentity();
    const client = startClientHandshake(trustFor(nitroCa.certificates[0]));
    const hello = decodeCbor(client.clientHello) as Record<string, unknown>;
    expect(
      (await codeOf(() => acceptSession(identity, encodeCbor({ ...hello, suites: ['EKMS-OTHER'] })))).code,
    ).toBe('SESSION_SUITE_UNSUPPORTED');
    // An enclave (or host) answering with a suite outside the offer.
    const { reply } = await acceptSession(identity, client.clientHello);
    const sh = decodeCbor(reply) as { body: Uint8Array; sig: Uint8Array };
    const body = decodeCbor(sh.body) as Record<string, unknown>;
    const forged = encodeServerHello(encodeCbor({ ...body, suite: 'EKMS-OTHER' }), sh.sig);
    expect((await codeOf(() => client.finish(forged))).code).toBe('SESSION_SUITE_UNSUPPORTED');
  });

  it('any flipped byte of the ServerHello is refused with a code (never accepted)', async () => {
    const identity = nitroIdentity();
    const trust = trustFor(nitroCa.certificates[0]);
    const client0 = startClientHandshake(trust);
    const { reply } = await acceptSession(identity, client0.clientHello);
    const positions = Array.from({ length: 40 }, (_, i) => Math.floor((i * reply.length) / 40));
    for (const pos of positions) {
      const client = startClientHandshake(trust);
      const { reply: r } = await acceptSession(identity, client.clientHello);
      const bad = Uint8Array.from(r);
      bad[Math.min(pos, bad.length - 1)]! ^= 0x01;
      const { code } = await codeOf(() => client.finish(bad));
      expect(code, `byte ${pos}`).not.toBe('NO_ERROR');
    }
  });

  it('refuses a wrong measurement (ENCLAVE_NOT_TRUSTED, MEASUREMENT_NOT_ALLOWED)', async () => {
    const r = await codeOf(() =>
      handshake(nitroIdentity({ measurement: 'cd'.repeat(48) }), trustFor(nitroCa.certificates[0])),
    );
    expect(r).toEqual({ code: 'ENCLAVE_NOT_TRUSTED', reason: 'MEASUREMENT_NOT_ALLOWED' });
  });

  it('refuses a debug enclave (PCR0-2 zero) unless allowed', async () => {
    const zero = '0'.repeat(96);
    const identity = nitroIdentity({ debug: true, measurement: zero });
    const trust = trustFor(nitroCa.certificates[0], { measurement: zero });
    expect(await codeOf(() => handshake(identity, trust))).toEqual({
      code: 'ENCLAVE_NOT_TRUSTED',
      reason: 'DEBUG_NOT_ALLOWED',
    });
    expect((await codeOf(() => handshake(identity, { ...trust, allowDebug: true }))).code).toBe('NO_ERROR');
  });

  it('refuses a simulated root unless the profile allows it (SIMULATED_NOT_ALLOWED)', async () => {
    const r = await codeOf(() =>
      handshake(nitroIdentity(), trustFor(nitroCa.certificates[0], { allowSimulated: false })),
    );
    expect(r).toEqual({ code: 'ENCLAVE_NOT_TRUSTED', reason: 'SIMULATED_NOT_ALLOWED' });
  });

  it('refuses an untrusted root (CERT_ROOT_UNTRUSTED): another simulated CA, or none', async () => {
    const other = await createSimulatedNitroCa({ now: new Date() });
    expect(await codeOf(() => handshake(nitroIdentity(), trustFor(other.certificates[0])))).toEqual({
      code: 'ENCLAVE_NOT_TRUSTED',
      reason: 'CERT_ROOT_UNTRUSTED',
    });
    expect(await codeOf(() => handshake(nitroIdentity(), { ...trustFor(''), roots: [] }))).toEqual({
      code: 'ENCLAVE_NOT_TRUSTED',
      reason: 'CERT_ROOT_UNTRUSTED',
    });
  });

  it('refuses stale evidence: older than maxEvidenceAgeMs (EVIDENCE_TOO_OLD), or with an expired leaf (CERT_EXPIRED)', async () => {
    const made = Date.now();
    const identity = nitroIdentity({ now: () => made });
    await identity.evidence();
    const trust = trustFor(nitroCa.certificates[0]);
    expect(await codeOf(() => handshake(identity, trust, () => made + 2.5 * HOUR))).toEqual({
      code: 'ENCLAVE_NOT_TRUSTED',
      reason: 'EVIDENCE_TOO_OLD',
    });
    expect(await codeOf(() => handshake(identity, trust, () => made + 4 * HOUR))).toEqual({
      code: 'ENCLAVE_NOT_TRUSTED',
      reason: 'CERT_EXPIRED',
    });
    expect(await codeOf(() => handshake(identity, trust, () => made - 10 * 60_000))).toEqual({
      code: 'ENCLAVE_NOT_TRUSTED',
      reason: 'CERT_NOT_YET_VALID',
    });
  });

  it('refuses replayed evidence of another identity (BINDING_MISMATCH), even with a valid signature by the replayer', async () => {
    // The host replays a genuine enclave's evidence next to its own identity key and signature.
    const genuine = nitroIdentity();
    const forger = nitroIdentity();
    const client = startClientHandshake(trustFor(nitroCa.certificates[0]));
    const { reply } = await acceptSession(forger, client.clientHello);
    const { body } = decodeServerHello(reply);
    const forgedBody = encodeCbor({
      suite: body.suite,
      nonce: body.nonce,
      ct: body.ct,
      identity: body.identity,
      evidence: { ...(await genuine.evidence()), certificates: [] },
    });
    const th = transcriptHash(client.clientHello, forgedBody);
    const forged = encodeServerHello(forgedBody, forger.signTranscript(th));
    expect(await codeOf(() => client.finish(forged))).toEqual({
      code: 'ENCLAVE_NOT_TRUSTED',
      reason: 'BINDING_MISMATCH',
    });
  });

  it('refuses malformed ClientHellos with a code, never a crash', async () => {
    const identity = nitroIdentity();
    const good = decodeCbor(startClientHandshake(trustFor(nitroCa.certificates[0])).clientHello) as Record<
      string,
      unknown
    >;
    const cases: Array<[string, unknown, string]> = [
      ['not a map', [1, 2], 'SESSION_HANDSHAKE_INVALID'],
      ['unknown version', { ...good, v: 2 }, 'PROTOCOL_VERSION_UNSUPPORTED'],
      ['unknown field', { ...good, extra: 1 }, 'SESSION_HANDSHAKE_INVALID'],
      [
        'missing share',
        { v: 1, t: 'client-hello', suites: good['suites'], nonce: good['nonce'] },
        'SESSION_HANDSHAKE_INVALID',
      ],
      ['short share', { ...good, share: new Uint8Array(1215) }, 'SESSION_HANDSHAKE_INVALID'],
      ['short nonce', { ...good, nonce: new Uint8Array(16) }, 'SESSION_HANDSHAKE_INVALID'],
      ['no suites', { ...good, suites: [] }, 'SESSION_HANDSHAKE_INVALID'],
      ['suite not text', { ...good, suites: [7] }, 'SESSION_HANDSHAKE_INVALID'],
      [
        'too many suites',
        { ...good, suites: Array.from({ length: 17 }, () => 'x') },
        'SESSION_HANDSHAKE_INVALID',
      ],
    ];
    for (const [label, value, code] of cases) {
      expect((await codeOf(() => acceptSession(identity, encodeCbor(value)))).code, label).toBe(code);
    }
    expect((await codeOf(() => acceptSession(identity, Uint8Array.of(0xff)))).code).toBe(
      'SESSION_HANDSHAKE_INVALID',
    );
    // An ML-KEM public key that fails the FIPS 203 modulus check.
    const bad = { ...good, share: new Uint8Array(1216).fill(0xff) };
    expect((await codeOf(() => acceptSession(identity, encodeCbor(bad)))).code).toBe(
      'SESSION_HANDSHAKE_INVALID',
    );
    expect(decodeClientHello(encodeCbor(good)).share).toHaveLength(1216);
  });
});

describe('records', () => {
  async function pair() {
    return handshake(nitroIdentity(), trustFor(nitroCa.certificates[0]));
  }
  const msg = (s: string): Uint8Array => new TextEncoder().encode(s);

  it.each([
    ['replayed', (recs: Uint8Array[]) => [recs[0]!, recs[0]!]],
    ['reordered', (recs: Uint8Array[]) => [recs[1]!, recs[0]!]],
    ['dropped', (recs: Uint8Array[]) => [recs[1]!]],
    ['truncated', (recs: Uint8Array[]) => [recs[0]!.subarray(0, recs[0]!.length - 1)]],
    ['shorter than a tag', (recs: Uint8Array[]) => [recs[0]!.subarray(0, 15)]],
    ['bit-flipped', (recs: Uint8Array[]) => [Uint8Array.from(recs[0]!, (b, i) => (i === 3 ? b ^ 0x80 : b))]],
    ['from the other direction', (_recs: Uint8Array[], back: Uint8Array) => [back]],
  ] as const)(
    'a %s record ends the session: SESSION_RECORD_INVALID, and nothing after it opens',
    async (_l, mangle) => {
      const { client, server } = await pair();
      const recs = [client.send.seal(msg('one')), client.send.seal(msg('two'))];
      const back = server.send.seal(msg('reply'));
      const delivered = mangle(recs, back);
      let failed = false;
      for (const r of delivered) {
        const { code } = await codeOf(() => server.receive.open(r));
        if (code !== 'NO_ERROR') {
          expect(code).toBe('SESSION_RECORD_INVALID');
          failed = true;
          break;
        }
      }
      expect(failed).toBe(true);
      // The session is over: even the genuine next record is refused now.
      expect((await codeOf(() => server.receive.open(recs[0]!))).code).toBe('SESSION_RECORD_INVALID');
    },
  );

  it('the sequence number advances only on success', async () => {
    const { client, server } = await pair();
    expect(server.receive.sequence).toBe(0);
    server.receive.open(client.send.seal(msg('a')));
    expect(server.receive.sequence).toBe(1);
  });
});

describe('key schedule test vector (docs/protocol.md §5.5)', () => {
  it('derives the documented keys and record from fixed inputs', () => {
    const ss = Uint8Array.from({ length: 32 }, (_, i) => i);
    const th = new Uint8Array(createHash('sha384').update('ekms test transcript').digest());
    const k = deriveSessionKeys(ss, th);
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const record = new RecordProtector(k.c2sKey, k.c2sIv).seal(new TextEncoder().encode('hello'));
    // Independent check of the HKDF-SHA-384 derivation (noble's HKDF, not node:crypto's).
    expect(hex(hkdf(sha384, ss, th, new TextEncoder().encode('ekms-session-v1 c2s key'), 32))).toBe(
      hex(k.c2sKey),
    );
    expect(hex(hkdf(sha384, ss, th, new TextEncoder().encode('ekms-session-v1 binder'), 32))).toBe(
      hex(k.binder),
    );
    expect({
      th: hex(th),
      c2sKey: hex(k.c2sKey),
      c2sIv: hex(k.c2sIv),
      s2cKey: hex(k.s2cKey),
      s2cIv: hex(k.s2cIv),
      binder: hex(k.binder),
      record0: hex(record),
    }).toMatchInlineSnapshot(`
      {
        "binder": "632a0f796d405e0d69ae193e5f7e249400949bbf4d5d8f154dd8ed6c2221fa92",
        "c2sIv": "5486c3920a6270d6002a602d",
        "c2sKey": "17913e6dbec4f37b68b2a199e200b2eb2798662cf07635c73fd8b5d148cc776f",
        "record0": "66424903d3a03b9fef8e9833cb323a37fc62bc1290",
        "s2cIv": "8158a0a3f124ffdc8ec78bde",
        "s2cKey": "b450e6f06d0d1315bd90f9fa59a564937268a8a4de2765261f946f679fd25634",
        "th": "021bdae7c45423307fb1eb12a3b088535a13ed332e232ea948cbf16a7dffd8730d224e2c8f14f9d064fb6efc50724ab2",
      }
    `);
  });
});
