// The served OpenAPI document is the committed openapi.json, and it says for every operation what
// a client needs: an operationId, a summary, its security and the error envelope of its refusals.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness/test-app.ts';

interface Operation {
  operationId?: string;
  summary?: string;
  security?: unknown[];
  parameters?: Array<{ in: string; name: string; required?: boolean }>;
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}
interface Document { info: { version: string }; paths: Record<string, Record<string, Operation>> }

const committedPath = new URL('../../openapi.json', import.meta.url);
const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('OpenAPI document', () => {
  let t: TestApp;
  let served: Document;
  beforeAll(async () => {
    t = await createTestApp();
    served = (await t.app.inject({ url: '/docs/json' })).json<Document>();
  });
  afterAll(async () => { await t.close(); });

  const operations = () => Object.entries(served.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, path, operation })));

  it('is the committed openapi.json (run `npm run openapi` after changing a route)', () => {
    const committed = JSON.parse(readFileSync(committedPath, 'utf8')) as unknown;
    expect(served).toEqual(committed);
  });

  it('carries the package version', () => {
    expect(served.info.version).toBe(packageVersion);
  });

  it('gives every operation an operationId, a summary and its security', () => {
    const ids = new Set<string>();
    for (const { name, path, operation } of operations()) {
      expect(operation.operationId, name).toMatch(/^[a-z][A-Za-z]+$/);
      expect(ids.has(operation.operationId!), `${name}: operationId repeats`).toBe(false);
      ids.add(operation.operationId!);
      expect(operation.summary, name).toBeTruthy();
      const expected = path.startsWith('/health/') ? [] : path.startsWith('/v1/partners') || path.startsWith('/v1/api-keys') || path.startsWith('/v1/admin/')
        ? [{ admin: [] }] : [{ apiKey: [] }];
      expect(operation.security, name).toEqual(expected);
    }
  });

  it('documents the refusals every authenticated operation can answer, in the error envelope', () => {
    for (const { name, path, operation } of operations()) {
      if (path.startsWith('/health/')) continue;
      const statuses = Object.keys(operation.responses);
      expect(statuses, name).toEqual(expect.arrayContaining(['401', '500', '503']));
      if (path.includes('{')) expect(statuses, name).toEqual(expect.arrayContaining(['400', '404']));
      if (name.startsWith('POST') || name.startsWith('PATCH')) expect(statuses, name).toEqual(expect.arrayContaining(['400', '413', '415']));
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        expect(response.content?.['application/json']?.schema, `${name} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
  });

  it('marks Idempotency-Key required on the points mutations', () => {
    for (const { name, operation } of operations()) {
      if (!/^POST \/v1\/points\/(earn|use|transfer|transactions)/.test(name)) continue;
      expect(operation.parameters?.find((p) => p.in === 'header' && p.name === 'idempotency-key')?.required, name).toBe(true);
    }
  });
});
