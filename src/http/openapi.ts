// The OpenAPI contract, generated from the routes (@fastify/swagger). What every route of a scope
// shares (its security, the refusals its hooks and the error handler can answer) is added here
// by an onRoute hook of that scope, so the document stays true as routes are added: a route
// declares only its own answers, its operationId and summary. openapi.json at the repository
// root is this document, committed (`npm run openapi`; src/http/openapi.test.ts keeps it equal).
import { readFileSync } from 'node:fs';
import type { SwaggerOptions } from '@fastify/swagger';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERROR_CATALOG, type ErrorCode } from '../errors.ts';
import { ErrorResponse } from './schemas.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Request body media types the route reads outside its JSON schema (the CSV upload), for the document only. */
    documentedBodies?: Record<string, { schema: Record<string, unknown> }>;
    /** The body may be left out entirely (the schema then admits null/undefined, which OpenAPI cannot say). */
    optionalBody?: object;
  }
}

/** Who may call the routes of a scope. */
export type Access = 'public' | 'partner' | 'admin';

const SECURITY: Record<Access, Array<Record<string, string[]>>> = {
  public: [],
  partner: [{ apiKey: [] }],
  admin: [{ admin: [] }],
};

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const FRAMEWORK_STATUSES = [408, 414, 431];

const codesOf = (status: number) => (Object.keys(ERROR_CATALOG) as ErrorCode[]).filter((code) => ERROR_CATALOG[code].status === status);

/** The error envelope with a description naming the catalog codes an answer of this status may carry. */
export function refusal(status: number, codes: readonly ErrorCode[] = codesOf(status)) {
  return { ...ErrorResponse, description: `Refused (docs/errors.md): ${codes.map((code) => `\`${code}\``).join(', ')}.` };
}

/**
 * Adds to every route of `scope`: its security requirement, and the refusals the scope's hooks and
 * the edge error handler can answer for it (400 for any input, 401 where authenticated, 404 on
 * path ids, 413/415 on a body, 429 under the rate limit, 500/503 from the backing services).
 * Refuses to start a route without operationId and summary.
 */
export function documentRoutes(scope: FastifyInstance, access: Access): void {
  scope.addHook('onRoute', (route: RouteOptions) => {
    const schema = (route.schema ?? {}) as Record<string, unknown> & { response?: Record<string, unknown>; hide?: boolean };
    if (schema.hide) return;
    if (typeof schema.operationId !== 'string' || typeof schema.summary !== 'string') {
      throw new Error(`${String(route.method)} ${route.url}: every route declares schema.operationId and schema.summary`);
    }
    const methods = [route.method].flat().map(String);
    const response: Record<string, unknown> = { ...schema.response };
    const add = (status: number, codes?: readonly ErrorCode[]) => { response[status] ??= refusal(status, codes); };
    const hasBody = methods.some((method) => BODY_METHODS.has(method));
    if (hasBody || schema.params || schema.querystring || schema.headers || schema.body) add(400);
    if (access !== 'public') add(401, access === 'admin' ? ['ADMIN_TOKEN_INVALID'] : ['API_KEY_MISSING', 'API_KEY_INVALID']);
    if (schema.params) add(404);
    if (hasBody) {
      add(413, ['PAYLOAD_TOO_LARGE']);
      add(415, ['UNSUPPORTED_MEDIA_TYPE']);
    }
    if (access === 'partner') add(429, ['RATE_LIMITED']);
    // Refusals of the HTTP layer itself (a request line or headers too long, a slow client), where
    // the catalog has codes for them.
    for (const status of FRAMEWORK_STATUSES) if (codesOf(status).length > 0) add(status);
    if (access !== 'public') {
      add(500, ['INTERNAL_ERROR']);
      add(503, ['SERVICE_UNAVAILABLE']);
    }
    route.schema = { ...schema, security: SECURITY[access], response };
  });
}

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Options of @fastify/swagger: the document's header and the per-route adjustments only the document needs. */
export function swaggerOptions(): SwaggerOptions {
  const optionalBodies = new Set<string>();
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Stampede',
        version: packageVersion,
        description: 'Flash-crowd coupons, redemption, points ledger and bulk jobs. Every refusal is `{error: {code, message}}` with a code from docs/errors.md.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: 'http://127.0.0.1:3000', description: 'A local `npm start`' }],
      tags: [
        { name: 'ops', description: 'Liveness, readiness (no credentials).' },
        { name: 'admin', description: 'Partners and their API keys (admin bearer token).' },
        { name: 'coupons', description: 'Coupon templates, issued coupons and their redemption.' },
        { name: 'claims', description: 'First-come-first-served claims.' },
        { name: 'points', description: 'The points ledger.' },
        { name: 'jobs', description: 'Bulk jobs and their webhooks.' },
      ],
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'A partner API key (POST /v1/partners answers the first).' },
          admin: { type: 'http', scheme: 'bearer', description: 'STAMPEDE_ADMIN_TOKEN.' },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      if (!schema) return { schema, url };
      let out = schema as Record<string, unknown>;
      const headers = out.headers as { properties?: Record<string, unknown>; required?: string[] } | undefined;
      // Checked by the handler (answering IDEMPOTENCY_KEY_REQUIRED), not by the schema, but required all the same.
      if (headers?.properties?.['idempotency-key']) {
        out = { ...out, headers: { ...headers, required: [...new Set([...(headers.required ?? []), 'idempotency-key'])] } };
      }
      const config = route.config;
      if (config?.optionalBody) {
        out = { ...out, body: config.optionalBody };
        optionalBodies.add(String(out.operationId));
      }
      if (config?.documentedBodies) {
        const body = out.body as { content?: Record<string, unknown> };
        out = { ...out, body: { content: { ...body.content, ...config.documentedBodies } } };
      }
      return { schema: out as typeof schema, url };
    },
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject;
      const { openapiObject } = document;
      for (const item of Object.values(openapiObject.paths ?? {})) {
        for (const operation of Object.values(item ?? {}) as OperationShape[]) {
          if (operation?.requestBody && optionalBodies.has(String(operation.operationId))) operation.requestBody.required = false;
          for (const response of Object.values(operation?.responses ?? {})) shareErrorSchema(response);
        }
      }
      openapiObject.components = { ...openapiObject.components, schemas: { ...openapiObject.components?.schemas, Error: ERROR_SCHEMA } };
      return openapiObject;
    },
  };
}

interface OperationShape {
  operationId?: string;
  requestBody?: { required?: boolean };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: { properties?: Record<string, unknown> } | { $ref: string } }> }>;
}

/** The error envelope, once, as components.schemas.Error: clients get one named type with the catalog's codes. */
const ERROR_SCHEMA = {
  type: 'object' as const,
  required: ['error'],
  properties: {
    error: {
      type: 'object' as const,
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' as const, enum: Object.keys(ERROR_CATALOG), description: 'Stable; see docs/errors.md.' },
        message: { type: 'string' as const, description: 'For people; may change.' },
        details: { description: 'For VALIDATION_FAILED: the fields at fault, as [{field, message}].' },
      },
    },
  },
};

/** Replaces an inline error envelope by a reference to components.schemas.Error. */
function shareErrorSchema(response: NonNullable<OperationShape['responses']>[string]): void {
  const media = response.content?.['application/json'];
  const schema = media?.schema;
  if (!media || !schema || !('properties' in schema) || !schema.properties) return;
  // Exactly the envelope: a job, say, has an `error` field of its own.
  const error = schema.properties.error as { properties?: Record<string, unknown> } | undefined;
  if (Object.keys(schema.properties).length !== 1 || !error?.properties?.code || !error.properties.message) return;
  media.schema = { $ref: '#/components/schemas/Error' };
  if (response.description === 'Default Response') response.description = 'Refused: the error envelope with a code of docs/errors.md.';
}
