// The validator compiler skips TypeBox's conversion only where it would change nothing, and checks
// the same either way.
import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { IdParams, PageQuery, registerFormats } from './schemas.ts';
import { convertsNothing, validatorCompiler } from './validator-compiler.ts';

registerFormats();

const compile = (schema: unknown, httpPart: string) =>
  validatorCompiler({ schema, httpPart, method: 'GET', url: '/' } as Parameters<typeof validatorCompiler>[0]) as (value: unknown) => { value?: unknown; error?: unknown };

describe('validator compiler', () => {
  it('skips conversion for objects of plain strings only', () => {
    expect(convertsNothing(IdParams)).toBe(true);
    expect(convertsNothing(Type.Object({ 'idempotency-key': Type.Optional(Type.String({ maxLength: 255 })) }))).toBe(true);
    expect(convertsNothing(PageQuery)).toBe(false); // an integer limit: "20" must become 20
    expect(convertsNothing(Type.Object({ n: Type.Union([Type.String(), Type.Number()]) }))).toBe(false);
    expect(convertsNothing(Type.Object({ s: Type.String() }, { additionalProperties: Type.Number() }))).toBe(false);
  });

  it('checks params as before: a UUID passes, anything else is an error', () => {
    const validate = compile(IdParams, 'params');
    expect(validate({ id: '019aaaaa-0000-7000-8000-000000000001' })).toEqual({ value: { id: '019aaaaa-0000-7000-8000-000000000001' } });
    expect(validate({ id: 'not-a-uuid' }).error).toBeDefined();
  });

  it('still converts where the schema needs it (a querystring integer)', () => {
    const validate = compile(PageQuery, 'querystring');
    expect(validate({ limit: '5' })).toMatchObject({ value: { limit: 5 } });
  });
});
