/**
 * Property tests (style §12; issue 9 "hostile input") for every session decoder an outsider reaches: ClientHello
 * (enclave side), ServerHello (client side), records (both), evidence bundles. Any input gives a value or a typed
 * EkmsError with a stable code — never another exception, a hang or an acceptance of altered bytes.
 * EKMS_FUZZ_RUNS raises the case count for a nightly-style run (the CI default keeps the suite fast).
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedNitroCa, type SimulatedNitroCa } from '../../attestation/simulated/index.js';
import { type EnclaveTrust, startClientHandshake } from '../../client/session.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { acceptSession, EnclaveIdentity } from '../../enclave/session.js';
import { encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import {
  decodeClientHello,
  decodeEvidence,
  decodeServerHello,
  RecordProtector,
} from '../../shared/session.js';
import { runs } from '../helpers/property-runs.js';

const RUNS = Number(process.env['EKMS_FUZZ_RUNS'] ?? 200);
const MEASUREMENT = 'ab'.repeat(48);
let ca: SimulatedNitroCa;
let identity: EnclaveIdentity;
let trust: EnclaveTrust;

beforeAll(async () => {
  ca = await createSimulatedNitroCa({ now: new Date() });
  identity = new EnclaveIdentity(simulatedAttestor('sim-nitro', MEASUREMENT, ca), Date.now);
  trust = { measurement: MEASUREMENT, roots: [ca.certificates[0]], allowSimulated: true };
  await identity.evidence();
}, 30_000);

/** Runs `fn`; passes if it returns or throws an EkmsError; fails on anything else. */
function typed(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
}

const mutation = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('flip', 'truncate', 'append', 'delete'),
  byte: fc.integer({ min: 0, max: 255 }),
});

function mutate(bytes: Uint8Array, m: { at: number; kind: string; byte: number }): Uint8Array {
  const at = bytes.length === 0 ? 0 : m.at % bytes.length;
  if (m.kind === 'flip') {
    const out = Uint8Array.from(bytes);
    out[at] = out[at]! ^ (m.byte | 1);
    return out;
  }
  if (m.kind === 'truncate') return bytes.subarray(0, at);
  if (m.kind === 'append') return Uint8Array.from([...bytes, m.byte]);
  return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]);
}

describe('session decoders under hostile input', () => {
  it('decodeClientHello / decodeServerHello on arbitrary bytes: a value or a typed code', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        typed(() => decodeClientHello(bytes));
        typed(() => decodeServerHello(bytes));
      }),
      { numRuns: runs(RUNS) },
    );
  });

  it('decoders on arbitrary CBOR values shaped like handshake messages: a value or a typed code', () => {
    const value = fc.dictionary(
      fc.constantFrom('v', 't', 'suites', 'nonce', 'share', 'body', 'sig', 'x'),
      fc.oneof(
        fc.integer(),
        fc.string(),
        fc.uint8Array({ maxLength: 1300 }),
        fc.array(fc.string(), { maxLength: 20 }),
        fc.constant(null),
      ),
    );
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encodeCbor(v);
        typed(() => decodeClientHello(bytes));
        typed(() => decodeServerHello(bytes));
        typed(() => decodeEvidence(v, 'evidence'));
      }),
      { numRuns: runs(RUNS) },
    );
  });

  it('a mutated ClientHello is answered or refused with a code by the enclave, never a crash', async () => {
    const hello = startClientHandshake(trust).clientHello;
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        try {
          await acceptSession(identity, mutate(hello, m));
        } catch (err) {
          if (!(err instanceof EkmsError)) throw err;
        }
      }),
      { numRuns: runs(Math.min(RUNS, 100)) },
    );
  });

  it('every mutation of a ServerHello is refused by the client with a code (never accepted)', async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const client = startClientHandshake(trust);
        const { reply } = await acceptSession(identity, client.clientHello);
        const bad = mutate(reply, m);
        // Deleting or appending can, rarely, leave CBOR that decodes to the same map (e.g. trailing bytes are
        // refused, so only a byte-identical frame could pass): identical bytes are not a mutation.
        if (Buffer.from(bad).equals(Buffer.from(reply))) return;
        expect(typed(() => client.finish(bad))).not.toBe('OK');
      }),
      { numRuns: runs(Math.min(RUNS, 100)) },
    );
  });

  it('every mutation of a record fails to open with SESSION_RECORD_INVALID', () => {
    const key = new Uint8Array(32).fill(7);
    const iv = new Uint8Array(12).fill(9);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), mutation, (plaintext, m) => {
        const record = new RecordProtector(key, iv).seal(plaintext);
        const bad = mutate(record, m);
        if (Buffer.from(bad).equals(Buffer.from(record))) return;
        expect(typed(() => new RecordProtector(key, iv).open(bad))).toBe('SESSION_RECORD_INVALID');
      }),
      { numRuns: runs(RUNS) },
    );
  });
});
