/** /api/v1/users and /api/v1/groups (names after Microsoft Graph's user and group resources). */
import type { FastifyInstance } from 'fastify';
import type { GroupChanges, NewGroup, NewUser, UserChanges } from '../../directory/directory.ts';
import { groupView, memberView, userView } from '../../directory/views.ts';
import type { MemberRef } from '../../store/directory.ts';
import { ADMIN_BODY_LIMIT, bearer, directoryOf, guard, pageOptions, type AdminContext } from './context.ts';
import {
  createGroupBody,
  createUserBody,
  groupSchema,
  idParams,
  listOf,
  memberBody,
  memberParams,
  memberSchema,
  pageQuery,
  problems,
  updateGroupBody,
  updateUserBody,
  userListQuery,
  userSchema,
} from './schemas.ts';

interface IdParams {
  id: string;
}
interface PageQuery {
  cursor?: string;
  limit?: string;
}

export function registerDirectoryRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const read = { onRequest: guard(ctx, 'directory:read') };
  const write = { onRequest: guard(ctx, 'directory:write'), bodyLimit: ADMIN_BODY_LIMIT };

  app.get<{ Querystring: PageQuery & { userPrincipalName?: string } }>(
    '/api/v1/users',
    { ...read, schema: { tags: ['users'], summary: 'List users', security: bearer, querystring: userListQuery, response: { 200: listOf(userSchema), ...problems } } },
    async (request) => {
      const { userPrincipalName } = request.query;
      const page = await directoryOf(ctx, request).listUsers({
        ...pageOptions(request.query),
        ...(userPrincipalName === undefined ? {} : { filter: { attribute: 'userPrincipalName', value: userPrincipalName } }),
      });
      return { value: page.items.map(userView), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
    },
  );

  app.post<{ Body: NewUser }>(
    '/api/v1/users',
    { ...write, schema: { tags: ['users'], summary: 'Create a user', security: bearer, body: createUserBody, response: { 201: userSchema, ...problems, 409: problems[400] } } },
    async (request, reply) => reply.code(201).send(userView(await directoryOf(ctx, request).createUser(request.body))),
  );

  app.get<{ Params: IdParams }>(
    '/api/v1/users/:id',
    { ...read, schema: { tags: ['users'], summary: 'Get a user', security: bearer, params: idParams, response: { 200: userSchema, ...problems } } },
    async (request) => userView(await directoryOf(ctx, request).getUser(request.params.id)),
  );

  app.patch<{ Params: IdParams; Body: UserChanges }>(
    '/api/v1/users/:id',
    { ...write, schema: { tags: ['users'], summary: 'Update a user', security: bearer, params: idParams, body: updateUserBody, response: { 200: userSchema, ...problems } } },
    async (request) => userView(await directoryOf(ctx, request).updateUser(request.params.id, request.body)),
  );

  app.delete<{ Params: IdParams }>(
    '/api/v1/users/:id',
    { ...write, schema: { tags: ['users'], summary: 'Delete a user (and its memberships)', security: bearer, params: idParams, response: problems } },
    async (request, reply) => {
      await directoryOf(ctx, request).deleteUser(request.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: PageQuery }>(
    '/api/v1/groups',
    { ...read, schema: { tags: ['groups'], summary: 'List groups', security: bearer, querystring: pageQuery, response: { 200: listOf(groupSchema), ...problems } } },
    async (request) => {
      const page = await directoryOf(ctx, request).listGroups(pageOptions(request.query));
      return { value: page.items.map(groupView), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
    },
  );

  app.post<{ Body: NewGroup }>(
    '/api/v1/groups',
    { ...write, schema: { tags: ['groups'], summary: 'Create a group', security: bearer, body: createGroupBody, response: { 201: groupSchema, ...problems } } },
    async (request, reply) => reply.code(201).send(groupView(await directoryOf(ctx, request).createGroup(request.body))),
  );

  app.get<{ Params: IdParams }>(
    '/api/v1/groups/:id',
    { ...read, schema: { tags: ['groups'], summary: 'Get a group', security: bearer, params: idParams, response: { 200: groupSchema, ...problems } } },
    async (request) => groupView(await directoryOf(ctx, request).getGroup(request.params.id)),
  );

  app.patch<{ Params: IdParams; Body: GroupChanges }>(
    '/api/v1/groups/:id',
    { ...write, schema: { tags: ['groups'], summary: 'Update a group', security: bearer, params: idParams, body: updateGroupBody, response: { 200: groupSchema, ...problems } } },
    async (request) => groupView(await directoryOf(ctx, request).updateGroup(request.params.id, request.body)),
  );

  app.delete<{ Params: IdParams }>(
    '/api/v1/groups/:id',
    { ...write, schema: { tags: ['groups'], summary: 'Delete a group (and its memberships)', security: bearer, params: idParams, response: problems } },
    async (request, reply) => {
      await directoryOf(ctx, request).deleteGroup(request.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: IdParams; Querystring: PageQuery }>(
    '/api/v1/groups/:id/members',
    { ...read, schema: { tags: ['groups'], summary: 'Direct members', security: bearer, params: idParams, querystring: pageQuery, response: { 200: listOf(memberSchema), ...problems } } },
    async (request) => {
      const page = await directoryOf(ctx, request).listMembers(request.params.id, pageOptions(request.query));
      return { value: page.items.map(memberView), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
    },
  );

  app.get<{ Params: IdParams; Querystring: PageQuery }>(
    '/api/v1/groups/:id/transitiveMembers',
    {
      ...read,
      schema: { tags: ['groups'], summary: 'Members through nested groups', security: bearer, params: idParams, querystring: pageQuery, response: { 200: listOf(memberSchema), ...problems } },
    },
    async (request) => {
      const page = await directoryOf(ctx, request).listTransitiveMembers(request.params.id, pageOptions(request.query));
      return { value: page.items.map(memberView), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
    },
  );

  app.post<{ Params: IdParams; Body: MemberRef }>(
    '/api/v1/groups/:id/members',
    {
      ...write,
      schema: { tags: ['groups'], summary: 'Add a user or group as a member (idempotent)', security: bearer, params: idParams, body: memberBody, response: { ...problems, 409: problems[400] } },
    },
    async (request, reply) => {
      await directoryOf(ctx, request).addMember(request.params.id, { type: request.body.type, id: request.body.id });
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: { id: string; memberId: string } }>(
    '/api/v1/groups/:id/members/:memberId',
    { ...write, schema: { tags: ['groups'], summary: 'Remove a direct member (user or group)', security: bearer, params: memberParams, response: problems } },
    async (request, reply) => {
      // Ids are UUIDs across users and groups, so the id alone says which (Graph's members/{id}/$ref).
      await directoryOf(ctx, request).removeMemberById(request.params.id, request.params.memberId);
      return reply.code(204).send();
    },
  );
}
