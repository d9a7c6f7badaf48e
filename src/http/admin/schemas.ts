/**
 * JSON Schemas of the admin API: one per input, validated by Fastify before
 * a handler runs (unknown properties refused: the server is built with
 * removeAdditional off) and published in /openapi.json.
 */

/** Strings are bounded everywhere: no field needs more, and the bound caps what one request can store. */
const name = { type: 'string', minLength: 1, maxLength: 256 } as const;
/** user@domain, as Entra ID UPNs and mail addresses are; quotes, semicolons and the like are just data. */
const address = { type: 'string', minLength: 3, maxLength: 256, pattern: '^[^@\\s]+@[^@\\s]+$' } as const;
const nullable = <T extends object>(schema: T) => ({ anyOf: [schema, { type: 'null' }] });
const id = { type: 'string', minLength: 1, maxLength: 128 } as const;

export const idParams = { type: 'object', properties: { id }, required: ['id'], additionalProperties: false } as const;
export const memberParams = {
  type: 'object',
  properties: { id, memberId: id },
  required: ['id', 'memberId'],
  additionalProperties: false,
} as const;

/** Query strings stay strings (the server does not coerce types), so numbers are checked by pattern. */
export const pageQuery = {
  type: 'object',
  properties: {
    cursor: { type: 'string', maxLength: 4096 },
    limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: '1–1000, default 100' },
  },
  additionalProperties: false,
} as const;

export const userListQuery = {
  ...pageQuery,
  properties: { ...pageQuery.properties, userPrincipalName: { type: 'string', maxLength: 256 } },
} as const;

export const auditQuery = {
  ...pageQuery,
  properties: { ...pageQuery.properties, resourceType: { type: 'string', maxLength: 64 }, resourceId: id },
} as const;

export const createUserBody = {
  type: 'object',
  properties: {
    userPrincipalName: address,
    displayName: name,
    mail: address,
    isExchangeOnline: { type: 'boolean', description: 'The mailbox is an Exchange Online (Office 365) one' },
    accountEnabled: { type: 'boolean' },
    externalId: name,
  },
  required: ['userPrincipalName', 'displayName'],
  additionalProperties: false,
} as const;

export const updateUserBody = {
  type: 'object',
  properties: {
    userPrincipalName: address,
    displayName: name,
    mail: nullable(address),
    isExchangeOnline: { type: 'boolean' },
    accountEnabled: { type: 'boolean' },
    externalId: nullable(name),
  },
  minProperties: 1,
  additionalProperties: false,
} as const;

export const createGroupBody = {
  type: 'object',
  properties: { displayName: name, description: { type: 'string', maxLength: 1024 }, externalId: name },
  required: ['displayName'],
  additionalProperties: false,
} as const;

export const updateGroupBody = {
  type: 'object',
  properties: { displayName: name, description: nullable({ type: 'string', maxLength: 1024 }), externalId: nullable(name) },
  minProperties: 1,
  additionalProperties: false,
} as const;

export const memberBody = {
  type: 'object',
  properties: { type: { type: 'string', enum: ['user', 'group'] }, id },
  required: ['type', 'id'],
  additionalProperties: false,
} as const;

export const createTokenBody = {
  type: 'object',
  properties: { name, role: { type: 'string', enum: ['administrator', 'policyManager', 'helpDesk'] } },
  required: ['name', 'role'],
  additionalProperties: false,
} as const;

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableString = { type: ['string', 'null'] } as const;

export const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    userPrincipalName: { type: 'string' },
    mail: nullableString,
    displayName: { type: 'string' },
    isExchangeOnline: { type: 'boolean' },
    accountEnabled: { type: 'boolean' },
    externalId: nullableString,
    createdDateTime: dateTime,
    lastModifiedDateTime: dateTime,
  },
  required: ['id', 'userPrincipalName', 'displayName', 'isExchangeOnline', 'accountEnabled'],
} as const;

export const groupSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    displayName: { type: 'string' },
    description: nullableString,
    externalId: nullableString,
    createdDateTime: dateTime,
    lastModifiedDateTime: dateTime,
  },
  required: ['id', 'displayName'],
} as const;

export const memberSchema = { type: 'object', properties: { type: { type: 'string', enum: ['user', 'group'] }, id: { type: 'string' } } } as const;

export const tokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string' },
    createdDateTime: dateTime,
    lastUsedDateTime: nullableString,
    revokedDateTime: nullableString,
    secret: { type: 'string', description: 'Only in the response that creates the token' },
  },
} as const;

export const auditSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    actor: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } },
    action: { type: 'string' },
    resourceType: { type: 'string' },
    resourceId: { type: 'string' },
    before: {},
    after: {},
    activityDateTime: dateTime,
    prevHash: { type: 'string' },
    hash: { type: 'string' },
  },
} as const;

/** A list page: Graph's `value`, and the opaque cursor for the next page. */
export function listOf<T extends object>(item: T) {
  return { type: 'object', properties: { value: { type: 'array', items: item }, nextCursor: { type: 'string' } }, required: ['value'] } as const;
}

export const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, code: { type: 'string' } },
} as const;

/** The error responses every authenticated route can give. */
export const problems = {
  400: problemSchema,
  401: problemSchema,
  403: problemSchema,
  404: problemSchema,
} as const;
