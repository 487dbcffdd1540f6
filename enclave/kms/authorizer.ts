/**
 * The authorisation hook of the key service (docs/key-service.md §6). Every key service operation asks the
 * authorizer before it reads or changes anything; a denial is ACCESS_DENIED and leaves no trace but the denial.
 *
 * Who the caller is comes from the connection. Until the attested session (issue 5) authenticates callers, every
 * connection to the enclave acts as the profile's admin — the host endpoint listens on 127.0.0.1 by default — and
 * the default authorizer lets the admin do everything. Key policies, grants and quorum approvals (issue 6) plug in
 * here without changing the operations.
 */
import type { Claims } from '../../attestation/claims.js';
import type { EncryptionContext } from '../../shared/encryption-context.js';
import { KmsError } from '../../shared/kms-errors.js';

/** The operations of the key service, as actions an authorizer decides on. */
export const KmsAction = {
  CreateKey: 'CreateKey',
  DescribeKey: 'DescribeKey',
  ListKeys: 'ListKeys',
  EnableKey: 'EnableKey',
  DisableKey: 'DisableKey',
  Encrypt: 'Encrypt',
  Decrypt: 'Decrypt',
  ReEncryptFrom: 'ReEncryptFrom',
  ReEncryptTo: 'ReEncryptTo',
  GenerateDataKey: 'GenerateDataKey',
  GenerateDataKeyWithoutPlaintext: 'GenerateDataKeyWithoutPlaintext',
  RotateKey: 'RotateKey',
  EnableKeyRotation: 'EnableKeyRotation',
  DisableKeyRotation: 'DisableKeyRotation',
  ScheduleKeyDeletion: 'ScheduleKeyDeletion',
  CancelKeyDeletion: 'CancelKeyDeletion',
  CreateAlias: 'CreateAlias',
  UpdateAlias: 'UpdateAlias',
  DeleteAlias: 'DeleteAlias',
  ListAliases: 'ListAliases',
  PutKeyReleasePolicy: 'PutKeyReleasePolicy',
  PutKeyPolicy: 'PutKeyPolicy',
  GetKeyPolicy: 'GetKeyPolicy',
  CreateGrant: 'CreateGrant',
  ListGrants: 'ListGrants',
  RevokeGrant: 'RevokeGrant',
  /** Attestation-gated release of a key's material (decided by the release policy; a key policy Deny still wins). */
  ReleaseKey: 'ReleaseKey',
  CreatePrincipal: 'CreatePrincipal',
  ListPrincipals: 'ListPrincipals',
} as const;
export type KmsAction = (typeof KmsAction)[keyof typeof KmsAction];

/** Who is asking. */
export interface Principal {
  readonly name: string;
  /** How the principal was established. `unauthenticated-admin`: the pre-session default (see the file header). */
  readonly authentication: 'unauthenticated-admin' | 'none' | 'signature' | 'attestation';
  readonly admin: boolean;
  /** Roles (`admin`, `user`); absent: derived from `admin` (an admin has both, as the bootstrap operator). */
  readonly roles?: readonly string[];
  /** Tags key policy conditions can reference (`${principal.tag.NAME}`). */
  readonly tags?: Readonly<Record<string, string>>;
}

/** A principal's roles, with the fallback for principals made without them. */
export function rolesOf(p: Principal): readonly string[] {
  return p.roles ?? (p.admin ? ['admin', 'user'] : []);
}

/** The caller of a session before it authenticates: may call health, describe, generateRandom, authenticate. */
export const ANONYMOUS: Principal = Object.freeze({
  name: 'anonymous',
  authentication: 'none',
  admin: false,
});

/** The in-process caller of tests that bypass the session (see the file header). */
export const DEFAULT_ADMIN: Principal = Object.freeze({
  name: 'admin',
  authentication: 'unauthenticated-admin',
  admin: true,
});

export interface AuthorizationRequest {
  readonly principal: Principal;
  readonly action: KmsAction;
  /** The key acted on (resolved id), when there is one. */
  readonly keyId?: string;
  readonly encryptionContext?: EncryptionContext;
  /** The caller's verified attestation claims (workload sessions), for key policy attestation conditions. */
  readonly claims?: Claims;
  /**
   * Only an explicit Deny refuses: for attestation-gated releases, which the key's release policy allows, so that an
   * explicit Deny in the key policy still wins over them (docs/key-policy.md §5, §9).
   */
  readonly denyOnly?: boolean;
}

export interface Authorizer {
  /** Returns if allowed. @throws KmsError ACCESS_DENIED */
  authorize(request: AuthorizationRequest): void | Promise<void>;
}

/** The default: the admin may do everything, nobody else anything. */
export const adminOnly: Authorizer = {
  authorize(request) {
    // Nothing here is an explicit Deny.
    if (request.denyOnly === true) return;
    /* Precondition: the caller is an admin (the default policy until key policies exist). */
    if (!request.principal.admin) {
      throw new KmsError('ACCESS_DENIED', `${request.principal.name} may not ${request.action}`, {
        details: { action: request.action, ...(request.keyId ? { keyId: request.keyId } : {}) },
      });
    }
  },
};
