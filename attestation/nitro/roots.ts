/**
 * The pinned AWS Nitro Enclaves root (commercial partition), G1.
 *
 * Source: https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip (member root.pem), whose
 * SHA-256 8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c is documented in
 * aws/aws-nitro-enclaves-nsm-api docs/attestation_process.md §2.1 and in the AWS Nitro Enclaves user
 * guide, "Verifying the root of trust". Subject CN=aws.nitro-enclaves, OU=AWS, O=Amazon, C=US; P-384;
 * valid 2019-10-28T13:28:05Z .. 2049-10-28T14:28:05Z. It is cabundle[0] of every real document.
 *
 * A public trust anchor, embedded as a constant (style §13: verification code does no I/O);
 * test/attestation/nitro-roots.test.ts pins its fingerprint.
 */
import type { TrustAnchor } from '../x509/index.js';

/** The AWS Nitro Enclaves root certificate G1, PEM. */
export const AWS_NITRO_ROOT_G1_PEM = `-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----`;

/** SHA-256 of the DER of `AWS_NITRO_ROOT_G1_PEM`, lowercase hex. */
export const AWS_NITRO_ROOT_G1_SHA256 = '641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b';

/** The AWS Nitro root G1 as a trust anchor (not simulated). */
export const AWS_NITRO_ROOT_G1: TrustAnchor = Object.freeze({
  certificate: AWS_NITRO_ROOT_G1_PEM,
  simulated: false,
  name: 'AWS Nitro Enclaves root G1',
});

/** The roots trusted by default for Nitro evidence (design §5). */
export const AWS_NITRO_TRUST_ANCHORS: readonly TrustAnchor[] = Object.freeze([AWS_NITRO_ROOT_G1]);
