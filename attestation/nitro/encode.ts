/**
 * Writing a Nitro attestation payload in AWS's layout (for the simulator and for tests).
 *
 * Layout of real documents (all 38 vectors in shared/vectors/nitro): a definite-length map of nine
 * entries in the order module_id, digest, timestamp, pcrs, certificate, cabundle, public_key,
 * user_data, nonce; the timestamp as a uint with an 8-byte argument (head 0x1b); PCRs as uint → bstr
 * in index order; absent optional fields as null. Encoding goes through `shared/cbor.ts`; integers
 * become BigInt first because cbor-x writes large JavaScript numbers as floats.
 */
import { encodeCbor } from '../../shared/cbor.js';
import type { NitroPayloadFields } from './types.js';

/** Encodes the payload map (the bytes that go into the COSE_Sign1 payload bstr). */
export function encodeNitroPayload(fields: NitroPayloadFields): Uint8Array {
  const pcrs = new Map([...fields.pcrs].sort(([a], [b]) => a - b));
  return encodeCbor({
    module_id: fields.moduleId,
    digest: fields.digest,
    timestamp: BigInt(fields.timestamp),
    pcrs,
    certificate: fields.certificate,
    cabundle: [...fields.cabundle],
    public_key: fields.publicKey,
    user_data: fields.userData,
    nonce: fields.nonce,
  });
}
