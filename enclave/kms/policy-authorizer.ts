/**
 * The key-policy authorizer (issue 6; docs/key-policy.md): decides every key service request by
 * - the key's policy (or the default separation-of-duties policy) for requests on a key, then its grants;
 * - the caller's role for account-level requests (CreateKey, ListKeys, ListAliases without a key, principals).
 * Default deny; an explicit Deny in the key policy wins over grants. A denial is ACCESS_DENIED naming the reason
 * and, when a statement decided, its sid.
 */
import type { EncryptionContext } from '../../shared/encryption-context.js';
import { KmsError } from '../../shared/kms-errors.js';
import type { Grant } from '../keystore/key-record.js';
import type { Keystore } from '../keystore/keystore.js';
import { type AuthorizationRequest, type Authorizer, KmsAction, rolesOf } from './authorizer.js';
import { DEFAULT_KEY_POLICY, evaluateKeyPolicy, type KeyPolicy, parseKeyPolicyText } from './key-policy.js';

/** Account-level actions and the roles that may take them. */
const ACCOUNT_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  [KmsAction.CreateKey]: ['admin'],
  [KmsAction.ListKeys]: ['admin', 'user'],
  [KmsAction.ListAliases]: ['admin', 'user'],
  // Alias actions without a key: createKey with an alias name, deleting an alias that does not exist.
  [KmsAction.CreateAlias]: ['admin'],
  [KmsAction.DeleteAlias]: ['admin'],
  [KmsAction.CreatePrincipal]: ['admin'],
  [KmsAction.ListPrincipals]: ['admin'],
};

/** Does a live grant on the key give `principal` this action for this context? */
export function grantAllows(
  grants: readonly Grant[] | undefined,
  principal: string,
  action: string,
  context: EncryptionContext | undefined,
  now: number,
): Grant | undefined {
  return (grants ?? []).find(
    (g) =>
      g.grantee === principal &&
      g.expiresAt > now &&
      g.operations.includes(action) &&
      (g.contextSubset === null ||
        Object.entries(g.contextSubset).every(([k, v]) => context !== undefined && context[k] === v)),
  );
}

function denied(request: AuthorizationRequest, why: string, details: Record<string, unknown> = {}): KmsError {
  return new KmsError('ACCESS_DENIED', `${request.principal.name} may not ${request.action}: ${why}`, {
    details: { action: request.action, ...(request.keyId ? { keyId: request.keyId } : {}), ...details },
  });
}

export function policyAuthorizer(keystore: Keystore, now: () => number): Authorizer {
  /** Parsed policies by text (bounded: a policy is parsed once, not per request). */
  const parsed = new Map<string, KeyPolicy>();
  const policyOf = (text: string | null | undefined): KeyPolicy => {
    if (text == null) return DEFAULT_KEY_POLICY;
    let p = parsed.get(text);
    if (p === undefined) {
      p = parseKeyPolicyText(text);
      if (parsed.size >= 1024) parsed.clear();
      parsed.set(text, p);
    }
    return p;
  };
  return {
    async authorize(request) {
      const roles = rolesOf(request.principal);
      if (request.keyId === undefined) {
        const allowed = ACCOUNT_ACTIONS[request.action];
        /* Precondition: account-level actions need one of their roles. */
        if (allowed === undefined || !allowed.some((r) => roles.includes(r))) {
          throw denied(request, `needs the ${allowed?.join(' or ') ?? 'admin'} role`);
        }
        return;
      }
      const record = await keystore.get(request.keyId);
      const at = now();
      const decision = evaluateKeyPolicy(policyOf(record.keyPolicy), {
        principal: { name: request.principal.name, roles, tags: request.principal.tags ?? {} },
        action: request.action,
        ...(request.encryptionContext === undefined ? {} : { encryptionContext: request.encryptionContext }),
        ...(request.claims === undefined ? {} : { claims: request.claims }),
        now: new Date(at),
      });
      if (request.denyOnly === true) {
        /* Precondition: an explicit Deny wins over an attestation-gated release as over everything else. */
        if (!decision.allowed && decision.reason === 'explicit-deny') {
          throw denied(request, `denied by statement ${String(decision.statement)} of the key policy`, {
            reason: decision.reason,
            ...(decision.statement === undefined ? {} : { statement: decision.statement }),
          });
        }
        return;
      }
      if (decision.allowed) return;
      /* Precondition: without an Allow, only a live, matching grant allows — never against an explicit Deny. */
      if (
        decision.reason !== 'explicit-deny' &&
        grantAllows(record.grants, request.principal.name, request.action, request.encryptionContext, at) !==
          undefined
      ) {
        return;
      }
      throw denied(
        request,
        decision.reason === 'explicit-deny'
          ? `denied by statement ${String(decision.statement)} of the key policy`
          : 'no statement of the key policy (and no grant) allows it',
        {
          reason: decision.reason,
          ...(decision.statement === undefined ? {} : { statement: decision.statement }),
        },
      );
    },
  };
}
