// Admin routes for a partner's own SQL source (distributions read user ids from it):
// PUT stores the connection string sealed (never shown again), GET says where it points, DELETE
// forgets it. A connection string is accepted only if it proves it cannot read what belongs to
// others (sql-source.ts assertSourceAllowed); each job run checks it again.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { describeSourceUrl, verifySourceUrl } from './sql-source.ts';
import { AppError } from '../errors.ts';
import { sealSecret } from '../infra/secret-box.ts';
import { ErrorResponse, IdParams, Timestamp } from '../http/schemas.ts';
import { deleteSqlSource, findSqlSource, partnerExists, upsertSqlSource, type SqlSourceRow } from './sql-source-repository.ts';

const SqlSourceBody = Type.Object({
  url: Type.String({ minLength: 13, maxLength: 2048, pattern: '^postgres(ql)?://', description: 'The partner\'s read-only PostgreSQL connection string; stored encrypted, never shown again.' }),
}, { additionalProperties: false });

const SqlSourceResponse = Type.Object({
  configured: Type.Literal(true),
  host: Type.String(),
  database: Type.String(),
  username: Type.String(),
  updatedAt: Timestamp,
});
const view = (row: SqlSourceRow) => ({ configured: true as const, host: row.host, database: row.database, username: row.username, updatedAt: row.updatedAt.toISOString() });

export function sqlSourceAdminRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.put('/v1/partners/:id/sql-source', {
      schema: { operationId: 'putSqlSource', summary: 'Register or replace a partner\'s SQL source (checked, stored sealed, never shown again)', tags: ['admin'], params: IdParams, body: SqlSourceBody, response: { 200: SqlSourceResponse, 400: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse } },
    }, async (request) => {
      const secretKey = ctx.config.secretKey;
      if (!secretKey) throw new AppError('SECRET_KEY_NOT_CONFIGURED');
      const partnerId = request.params.id;
      if (!(await partnerExists(ctx.db, partnerId))) throw new AppError('PARTNER_NOT_FOUND');
      let where;
      try {
        where = describeSourceUrl(request.body.url);
      } catch {
        throw new AppError('VALIDATION_FAILED', 'body/url: not a valid connection string', [{ field: 'body.url', message: 'not a valid connection string' }]);
      }
      await verifySourceUrl(ctx, request.body.url);
      const row = await upsertSqlSource(ctx.db, { partnerId, sealedUrl: sealSecret(secretKey, request.body.url, partnerId), ...where });
      if (!row) throw new AppError('PARTNER_NOT_FOUND');
      return view(row);
    });

    app.get('/v1/partners/:id/sql-source', {
      schema: { operationId: 'getSqlSource', summary: 'Where a partner\'s SQL source points (host, database, user; never the password)', tags: ['admin'], params: IdParams, response: { 200: SqlSourceResponse, 404: ErrorResponse } },
    }, async (request) => {
      const row = await findSqlSource(ctx.db, request.params.id);
      if (!row) throw new AppError('SQL_SOURCE_NOT_FOUND');
      return view(row);
    });

    app.delete('/v1/partners/:id/sql-source', {
      schema: { operationId: 'deleteSqlSource', summary: 'Remove a partner\'s SQL source', tags: ['admin'], params: IdParams, response: { 204: Type.Null(), 404: ErrorResponse } },
    }, async (request, reply) => {
      if (!(await deleteSqlSource(ctx.db, request.params.id))) throw new AppError('SQL_SOURCE_NOT_FOUND');
      return reply.code(204).send(null);
    });
  };
}
