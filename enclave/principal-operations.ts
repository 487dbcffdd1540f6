/**
 * `createPrincipal` and `listPrincipals` (issue 6; docs/key-policy.md §principals): admins register principals
 * (name, Ed25519 public key, roles, tags); everything else about access lives in key policies and grants.
 */
import { createHash } from 'node:crypto';
import { ProtocolError } from '../shared/errors.js';
import { KmsAction } from './kms/authorizer.js';
import { bytesParam, checkKeys, stringParam } from './kms/params.js';
import type { Operation } from './operations.js';

export const createPrincipal: Operation = async (params, ctx, caller) => {
  checkKeys(params, ['name', 'publicKey', 'roles', 'tags']);
  const name = stringParam(params, 'name', 64);
  if (name === undefined) throw new ProtocolError('REQUEST_INVALID', 'name is required');
  const publicKey = bytesParam(params, 'publicKey');
  const roles = params['roles'];
  if (!Array.isArray(roles) || roles.length > 4 || !roles.every((r) => typeof r === 'string')) {
    throw new ProtocolError('REQUEST_INVALID', 'roles must be a list of role names');
  }
  const tags = params['tags'] ?? {};
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags) || tags instanceof Uint8Array) {
    throw new ProtocolError('REQUEST_INVALID', 'tags must be a map of strings');
  }
  await ctx.authorizer.authorize({ principal: caller.principal, action: KmsAction.CreatePrincipal });
  const p = await ctx.principals.add({
    name,
    publicKey,
    roles: roles as string[],
    tags: tags as Record<string, string>,
  });
  return { name: p.name, roles: [...p.roles], tags: { ...p.tags } };
};

export const listPrincipals: Operation = async (params, ctx, caller) => {
  checkKeys(params, []);
  await ctx.authorizer.authorize({ principal: caller.principal, action: KmsAction.ListPrincipals });
  return {
    principals: ctx.principals.list().map((p) => ({
      name: p.name,
      roles: [...p.roles],
      tags: { ...p.tags },
      publicKeySha256: createHash('sha256').update(p.publicKey).digest('hex'),
    })),
  };
};
