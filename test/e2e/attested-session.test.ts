/**
 * The attested session and attestation-gated release with the real processes (design §3; issue 5):
 * - clients trust the enclave only through its evidence; a changed measurement is refused before any request;
 * - outside a session only health/describe answer; inside, callers are anonymous until they authenticate;
 * - keys reach a workload only HPKE-wrapped to the recipient key its evidence binds, when the key's release
 *   policy accepts its claims; an independent HPKE implementation (hpke-js) opens them;
 * - a recording relay sees no key, plaintext or session secret; a tampering relay is detected every time.
 */
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { XWing } from '@hpke/hybridkem-x-wing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type SimulatedNitroCa, simulateNitroDocument } from '../../attestation/simulated/index.js';
import { type ConnectOptions, connect, type EkmsClient, type WorkloadCredentials } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { hpkeOpen } from '../../shared/hpke.js';
import { encodeRequest } from '../../shared/messages.js';
import { xwingKeygen } from '../../shared/xwing.js';
import { startTestHost } from '../helpers/service.js';

const WORKLOAD_MEASUREMENT = '5a'.repeat(48);
const MODIFIED_MEASUREMENT = '5b'.repeat(48);

let dir: string;
let host: Host;
let ca: SimulatedNitroCa;
const adminKeys = generateKeyPairSync('ed25519');
const admin = {
  publicKey: new Uint8Array(adminKeys.publicKey.export({ type: 'spki', format: 'der' })),
  privateKey: adminKeys.privateKey,
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-session-'));
  host = await startTestHost({
    stateDir: join(dir, 'state'),
    simulatedCaFile: join(dir, 'sim-ca.json'),
    adminPublicKey: admin.publicKey,
  });

  ca = JSON.parse(readFileSync(join(dir, 'sim-ca.json'), 'utf8')) as SimulatedNitroCa;
}, 60_000);

afterAll(async () => {
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EkmsError) return { code: err.code, message: err.message };
    throw err;
  }
  return { code: 'NO_ERROR', message: '' };
}

function options(extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return { trust: host.trust, timeoutMs: 10_000, ...extra };
}

/** A workload with its own simulated attestor (same simulated hardware CA, its own measurement). */
function workload(
  measurement: string,
  opts: { debug?: boolean; tamper?: (binding: Uint8Array) => Uint8Array } = {},
) {
  const keys = xwingKeygen();
  const m = Buffer.from(measurement, 'hex');
  const zero = new Uint8Array(48);
  const credentials: WorkloadCredentials = {
    recipientPublicKey: keys.publicKey,
    async evidence(binding) {
      const document = await simulateNitroDocument(ca, {
        now: new Date(),
        pcrs: opts.debug ? { 0: zero, 1: zero, 2: zero } : { 0: m, 1: m, 2: m },
        userData: opts.tamper ? opts.tamper(binding) : binding,
      });
      return { type: 'nitro', document, certificates: [] };
    },
  };
  return { keys, credentials };
}

function releasePolicy(measurement: string): string {
  return JSON.stringify({ version: 1, allowSimulated: true, measurements: [measurement] });
}

describe('trust in the enclave', () => {
  it('a session with the profile trust attests the enclave: the claims carry its measurement', async () => {
    const c = await connect(host.endpoint, options());
    expect((await c.generateRandom(16)).length).toBe(16);
    expect(c.enclaveClaims?.measurement).toBe(host.enclave.measurement);
    c.close();
  });

  it('a client expecting another measurement (a changed enclave bundle) is refused before any request', async () => {
    const r = await codeOf(
      connect(host.endpoint, options({ trust: { ...host.trust, measurement: 'ee'.repeat(48) } })),
    );
    expect(r.code).toBe('ENCLAVE_NOT_TRUSTED');
    expect(r.message).toMatch(/measurement/);
  });

  it('a client that does not trust the simulated root is refused (SIMULATED_NOT_ALLOWED / CERT_ROOT_UNTRUSTED)', async () => {
    expect(
      (await codeOf(connect(host.endpoint, options({ trust: { ...host.trust, allowSimulated: false } }))))
        .code,
    ).toBe('ENCLAVE_NOT_TRUSTED');
    expect(
      (await codeOf(connect(host.endpoint, options({ trust: { ...host.trust, roots: [] } })))).code,
    ).toBe('ENCLAVE_NOT_TRUSTED');
  });

  it('connect without trust is a configuration error: no unverified connections', async () => {
    expect((await codeOf(connect(host.endpoint, { timeoutMs: 1000 }))).code).toBe('CONFIG_INVALID');
  });
});

describe('callers', () => {
  it('outside a session the enclave answers only health and describe (SESSION_REQUIRED otherwise)', async () => {
    const ws = new WebSocket(host.endpoint);
    await new Promise((r) => ws.once('open', r));
    const answers: unknown[] = [];
    ws.on('message', (d: Buffer) => answers.push(decodeCbor(new Uint8Array(d))));
    ws.send(encodeRequest(1, 'health'));
    ws.send(encodeRequest(2, 'generateRandom', { length: 8 }));
    ws.send(encodeRequest(3, 'createKey', {}));
    await new Promise((r) => setTimeout(r, 500));
    ws.close();
    const byId = new Map(answers.map((a) => [(a as { id: number }).id, a as Record<string, unknown>]));
    expect(byId.get(1)?.['ok']).toBe(true);
    const codeOfAnswer = (id: number) => (byId.get(id)?.['error'] as { code: string } | undefined)?.code;
    expect(codeOfAnswer(2)).toBe('SESSION_REQUIRED');
    expect(codeOfAnswer(3)).toBe('SESSION_REQUIRED');
  });

  it('an anonymous session may not use keys (ACCESS_DENIED); the admin principal may', async () => {
    const anon = await connect(host.endpoint, options());
    expect((await codeOf(anon.createKey({}))).code).toBe('ACCESS_DENIED');
    anon.close();
    const a = await connect(host.endpoint, options({ principal: admin }));
    expect(a.identity).toEqual({ principal: 'admin', admin: true, workload: null });
    const k = await a.createKey({});
    expect(k.state).toBe('Enabled');
    a.close();
  });

  it('an unregistered principal key is refused (AUTHENTICATION_FAILED)', async () => {
    const other = generateKeyPairSync('ed25519');
    const r = await codeOf(
      connect(
        host.endpoint,
        options({
          principal: {
            publicKey: new Uint8Array(other.publicKey.export({ type: 'spki', format: 'der' })),
            privateKey: other.privateKey,
          },
        }),
      ),
    );
    expect(r.code).toBe('AUTHENTICATION_FAILED');
  });

  it('a principal signature made with another key than the registered one is refused (AUTHENTICATION_FAILED)', async () => {
    const other = generateKeyPairSync('ed25519');
    const r = await codeOf(
      connect(
        host.endpoint,
        options({ principal: { publicKey: admin.publicKey, privateKey: other.privateKey } }),
      ),
    );
    expect(r.code).toBe('AUTHENTICATION_FAILED');
  });
});

describe('attestation-gated release', () => {
  let keyId: string;
  let unreleasable: string;
  let adminClient: EkmsClient;
  beforeAll(async () => {
    adminClient = await connect(host.endpoint, options({ principal: admin }));
    keyId = (await adminClient.createKey({ releasePolicy: releasePolicy(WORKLOAD_MEASUREMENT) })).keyId;
    unreleasable = (await adminClient.createKey({})).keyId;
  });
  afterAll(() => adminClient.close());

  async function openRelease(r: Record<string, unknown>, secretKey: Uint8Array, enclaveIdentity: Uint8Array) {
    const statement = r['release'] as Uint8Array;
    // The enclave's signature over the statement, by the identity key its evidence binds.
    const ok = verify(
      null,
      Buffer.concat([Buffer.from('ekms-release-v1 '), statement]),
      {
        key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(enclaveIdentity).toString('base64url') },
        format: 'jwk',
      },
      r['signature'] as Uint8Array,
    );
    expect(ok).toBe(true);
    const s = decodeCbor(statement) as Record<string, unknown>;
    const info = encodeCbor({
      ctx: 'ekms-release-v1',
      op: s['op'],
      keyId: s['keyId'],
      keyVersion: s['keyVersion'],
      requestDigest: s['requestDigest'],
    });
    const ours = hpkeOpen(
      secretKey,
      s['enc'] as Uint8Array,
      info,
      new Uint8Array(0),
      s['ciphertext'] as Uint8Array,
    );
    // An independent HPKE implementation opens the same ciphertext.
    const suite = new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const ab = (b: Uint8Array) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    const recipientKey = await suite.kem.importKey('raw', ab(secretKey), false);
    const theirs = new Uint8Array(
      await suite.open(
        { recipientKey, enc: ab(s['enc'] as Uint8Array), info: ab(info) },
        ab(s['ciphertext'] as Uint8Array),
      ),
    );
    expect(Buffer.from(theirs).equals(Buffer.from(ours))).toBe(true);
    return { material: ours, statement: s };
  }

  it('GenerateDataKey, Decrypt and ReleaseKey with a recipient: HPKE to the attested key, opened by hpke-js too', async () => {
    const w = workload(WORKLOAD_MEASUREMENT);
    const c = await connect(host.endpoint, options({ workload: w.credentials }));
    expect(c.identity?.workload).toMatchObject({
      type: 'nitro',
      measurement: WORKLOAD_MEASUREMENT,
      simulated: true,
    });
    const identity = Buffer.from((c.enclaveClaims as { publicKey: string }).publicKey, 'hex');
    const gdk = await c.request('generateDataKey', {
      keyId,
      encryptionContext: { party: 'a' },
      recipient: true,
    });
    expect(gdk['plaintext']).toBeUndefined();
    const dk = await openRelease(gdk, w.keys.secretKey, identity);
    expect(dk.material).toHaveLength(32);
    expect(dk.statement['recipient']).toEqual(
      new Uint8Array(createHash('sha256').update(w.keys.publicKey).digest()),
    );
    // The admin decrypts the same blob in plaintext: the wrapped key is the data key.
    const plain = await adminClient.decrypt(gdk['ciphertextBlob'] as Uint8Array, { party: 'a' });
    expect(Buffer.from(plain.plaintext).equals(Buffer.from(dk.material))).toBe(true);
    const dec = await c.request('decrypt', {
      ciphertextBlob: gdk['ciphertextBlob'],
      encryptionContext: { party: 'a' },
      recipient: true,
    });
    expect(
      Buffer.from((await openRelease(dec, w.keys.secretKey, identity)).material).equals(
        Buffer.from(dk.material),
      ),
    ).toBe(true);
    const rel = await c.request('releaseKey', { keyId });
    const kek = await openRelease(rel, w.keys.secretKey, identity);
    expect(kek.material).toHaveLength(32);
    expect(kek.statement['op']).toBe('ReleaseKey');
    // Without `recipient`, the workload gets nothing in plaintext (it is not an admin).
    expect((await codeOf(c.request('generateDataKey', { keyId }))).code).toBe('ACCESS_DENIED');
    c.close();
  });

  it('a modified workload (another measurement) is refused with the reason (ACCESS_DENIED, MEASUREMENT_NOT_ALLOWED)', async () => {
    const c = await connect(host.endpoint, options({ workload: workload(MODIFIED_MEASUREMENT).credentials }));
    for (const [op, params] of [
      ['generateDataKey', { keyId, recipient: true }],
      ['releaseKey', { keyId }],
    ] as const) {
      const r = await codeOf(c.request(op, params));
      expect(r.code, op).toBe('ACCESS_DENIED');
      expect(r.message, op).toMatch(/MEASUREMENT_NOT_ALLOWED/);
    }
    c.close();
  });

  it('a debug workload is refused (DEBUG_NOT_ALLOWED)', async () => {
    const zero = '0'.repeat(96);
    await adminClient.request('putKeyReleasePolicy', {
      keyId: unreleasable,
      releasePolicy: releasePolicy(zero),
    });
    const c = await connect(
      host.endpoint,
      options({ workload: workload(zero, { debug: true }).credentials }),
    );
    const r = await codeOf(c.request('releaseKey', { keyId: unreleasable }));
    expect(r.code).toBe('ACCESS_DENIED');
    expect(r.message).toMatch(/DEBUG_NOT_ALLOWED/);
    await adminClient.request('putKeyReleasePolicy', { keyId: unreleasable, releasePolicy: null });
    c.close();
  });

  it('a key without a release policy is never released (ACCESS_DENIED)', async () => {
    const c = await connect(host.endpoint, options({ workload: workload(WORKLOAD_MEASUREMENT).credentials }));
    expect((await codeOf(c.request('releaseKey', { keyId: unreleasable }))).code).toBe('ACCESS_DENIED');
    c.close();
  });

  it('evidence not bound to this session and recipient is refused (AUTHENTICATION_FAILED)', async () => {
    const flipped = workload(WORKLOAD_MEASUREMENT, {
      tamper: (b) => Uint8Array.from(b, (x, i) => (i === 40 ? x ^ 1 : x)),
    });
    expect((await codeOf(connect(host.endpoint, options({ workload: flipped.credentials })))).code).toBe(
      'AUTHENTICATION_FAILED',
    );
    // Evidence for another recipient key: the released key would go to a key the evidence does not vouch for.
    const other = xwingKeygen();
    const swapped = workload(WORKLOAD_MEASUREMENT, {
      tamper: (b) => {
        const out = Uint8Array.from(b);
        out.set(createHash('sha256').update(other.publicKey).digest(), 0);
        return out;
      },
    });
    expect((await codeOf(connect(host.endpoint, options({ workload: swapped.credentials })))).code).toBe(
      'AUTHENTICATION_FAILED',
    );
  });

  it('a recipient key failing the ML-KEM encapsulation key check is refused when presented (REQUEST_INVALID)', async () => {
    const w = workload(WORKLOAD_MEASUREMENT);
    // First coefficient of the ML-KEM part set to 4095 (≥ q): the evidence binds it correctly, the key is invalid.
    const bad = Uint8Array.from(w.keys.publicKey);
    bad[0] = 0xff;
    bad[1] = (bad[1] as number) | 0x0f;
    const r = await codeOf(
      connect(host.endpoint, options({ workload: { ...w.credentials, recipientPublicKey: bad } })),
    );
    expect(r.code).toBe('REQUEST_INVALID');
    expect(r.message).toMatch(/FIPS 203/);
  });

  it('an admin without workload evidence cannot ask for a recipient release (RECIPIENT_NOT_ATTESTED)', async () => {
    expect((await codeOf(adminClient.request('releaseKey', { keyId }))).code).toBe('RECIPIENT_NOT_ATTESTED');
    expect((await codeOf(adminClient.request('generateDataKey', { keyId, recipient: true }))).code).toBe(
      'RECIPIENT_NOT_ATTESTED',
    );
  });

  it('an invalid release policy is refused when set (POLICY_INVALID)', async () => {
    const r = await codeOf(
      adminClient.request('putKeyReleasePolicy', { keyId, releasePolicy: '{"version":1,"bogus":true}' }),
    );
    expect(r.code).toBe('POLICY_INVALID');
  });
});

// ------------------------------------------------------------------------------------------------ relays

type Mangle = (dir: 'c2e' | 'e2c', index: number, frame: Buffer) => Buffer[];

/** A WebSocket relay between the client and the host that records (and may tamper with) every frame. */
async function relay(mangle: Mangle = (_d, _i, f) => [f]) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const captured: Buffer[] = [];
  wss.on('connection', (client) => {
    const upstream = new WebSocket(host.endpoint);
    const counts = { c2e: 0, e2c: 0 };
    const queue: Buffer[] = [];
    upstream.on('open', () => {
      for (const f of queue) upstream.send(f);
      queue.length = 0;
    });
    client.on('message', (d: Buffer) => {
      captured.push(Buffer.from(d));
      for (const f of mangle('c2e', counts.c2e++, d)) {
        if (upstream.readyState === WebSocket.OPEN) upstream.send(f);
        else queue.push(f);
      }
    });
    upstream.on('message', (d: Buffer) => {
      captured.push(Buffer.from(d));
      for (const f of mangle('e2c', counts.e2c++, d)) client.send(f);
    });
    client.on('close', () => upstream.close());
    upstream.on('close', () => client.close());
    upstream.on('error', () => client.terminate());
  });
  const port = (wss.address() as { port: number }).port;
  return {
    endpoint: `ws://127.0.0.1:${port}`,
    captured,
    close: () => new Promise<void>((r) => wss.close(() => r())),
  };
}

function occurs(haystack: Buffer, secret: Uint8Array): boolean {
  const s = Buffer.from(secret);
  return (
    haystack.includes(s) ||
    haystack.includes(Buffer.from(s.toString('hex'))) ||
    haystack.includes(Buffer.from(s.toString('base64').replace(/=+$/, '')))
  );
}

describe('the host is blind', () => {
  it('a recording relay captures no data key, plaintext, released key or session secret (raw, hex, base64)', async () => {
    const r = await relay();
    const a = await connect(r.endpoint, options({ principal: admin }));
    const key = (await a.createKey({ releasePolicy: releasePolicy(WORKLOAD_MEASUREMENT) })).keyId;
    const dk = await a.generateDataKey(key, { encryptionContext: { tenant: 't' } });
    const secretText = new TextEncoder().encode('the quarterly numbers nobody may see');
    const blob = await a.encrypt(key, Uint8Array.from(secretText), { tenant: 't' });
    const back = await a.decrypt(blob.ciphertextBlob, { tenant: 't' });
    expect(new TextDecoder().decode(back.plaintext)).toBe('the quarterly numbers nobody may see');
    const adminBinder = Uint8Array.from(
      (a as unknown as { conn: { session: { binder: Uint8Array } } }).conn.session.binder,
    );
    const w = workload(WORKLOAD_MEASUREMENT);
    const c = await connect(r.endpoint, options({ workload: w.credentials }));
    const rel = await c.request('releaseKey', { keyId: key });
    const s = decodeCbor(rel['release'] as Uint8Array) as Record<string, unknown>;
    const info = encodeCbor({
      ctx: 'ekms-release-v1',
      op: s['op'],
      keyId: s['keyId'],
      keyVersion: s['keyVersion'],
      requestDigest: s['requestDigest'],
    });
    const enclaveIdentity = Buffer.from((c.enclaveClaims as { publicKey: string }).publicKey, 'hex');
    const kek = hpkeOpen(
      w.keys.secretKey,
      s['enc'] as Uint8Array,
      info,
      new Uint8Array(0),
      s['ciphertext'] as Uint8Array,
    );
    a.close();
    c.close();
    await r.close();
    const all = Buffer.concat(r.captured);
    expect(all.length).toBeGreaterThan(5_000);
    const secrets: Array<[string, Uint8Array]> = [
      ['data key', dk.plaintext],
      ['plaintext', secretText],
      ['released KEK', kek],
      ['session binder', adminBinder],
      ['workload secret key', w.keys.secretKey],
    ];
    for (const [what, secret] of secrets) expect(occurs(all, secret), what).toBe(false);
    // The control: the capture does contain what is public (the enclave's identity key, in the ServerHello)…
    expect(occurs(all, enclaveIdentity)).toBe(true);
    // …but not even the workload's recipient public key, which travels inside the session.
    expect(occurs(all, w.keys.publicKey.subarray(0, 64))).toBe(false);
  });

  it.each([
    ['drops a request', (d: string, i: number) => (d === 'c2e' && i === 3 ? 'drop' : 'pass')],
    ['duplicates a request', (d: string, i: number) => (d === 'c2e' && i === 3 ? 'dup' : 'pass')],
    ['flips a bit in a request', (d: string, i: number) => (d === 'c2e' && i === 3 ? 'flip' : 'pass')],
    ['drops a response', (d: string, i: number) => (d === 'e2c' && i === 3 ? 'drop' : 'pass')],
    ['duplicates a response', (d: string, i: number) => (d === 'e2c' && i === 3 ? 'dup' : 'pass')],
    ['flips a bit in a response', (d: string, i: number) => (d === 'e2c' && i === 3 ? 'flip' : 'pass')],
    [
      'reorders two requests',
      (d: string, i: number) =>
        d === 'c2e' && i === 3 ? 'hold' : d === 'c2e' && i === 4 ? 'release' : 'pass',
    ],
    [
      'reorders two responses',
      (d: string, i: number) =>
        d === 'e2c' && i === 3 ? 'hold' : d === 'e2c' && i === 4 ? 'release' : 'pass',
    ],
  ] as const)(
    'a relay that %s is detected: SESSION_RECORD_INVALID, never a wrong answer',
    async (_label, plan) => {
      let held: Buffer | undefined;
      const r = await relay((d, i, f) => {
        const what = plan(d, i);
        if (what === 'drop') return [];
        if (what === 'dup') return [f, f];
        if (what === 'flip') {
          const g = Buffer.from(f);
          g[g.length - 20]! ^= 0x04;
          return [g];
        }
        if (what === 'hold') {
          held = f;
          return [];
        }
        if (what === 'release') return held ? [f, held] : [f];
        return [f];
      });
      // Frames: c2e 0 hello, 1 authenticate, 2.. requests; e2c 0 server hello, 1 authenticate result, 2.. responses.
      const c = await connect(r.endpoint, options({ principal: admin, timeoutMs: 3_000 }));
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          c.generateRandom(8 + i).then(
            (x) => ({ ok: true as const, len: x.length, i }),
            (err: EkmsError) => ({ ok: false as const, code: err.code, i }),
          ),
        ),
      );
      c.close();
      await r.close();
      // Every answer that arrived is the right one; the tampering surfaced as SESSION_RECORD_INVALID.
      for (const x of results) if (x.ok) expect(x.len).toBe(8 + x.i);
      const codes = results.filter((x) => !x.ok).map((x) => (x as { code: string }).code);
      expect(codes.length).toBeGreaterThan(0);
      expect(codes).toContain('SESSION_RECORD_INVALID');
    },
  );
});
