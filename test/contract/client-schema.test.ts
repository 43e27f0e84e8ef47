// The typed client's types are generated from the committed contract: regenerating them changes nothing.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clientSchemaText, schemaUrl } from '../../scripts/client.ts';

describe('typed client', () => {
  it('has types generated from the committed openapi.json (run `npm run client`)', async () => {
    expect(readFileSync(schemaUrl, 'utf8')).toBe(await clientSchemaText());
  });
});
