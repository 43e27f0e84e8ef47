// The schema validator of every route: @fastify/type-provider-typebox's, without its per-request
// conversion where it cannot change anything. Its compiler runs TypeBox's generic Value.Convert on
// params, headers and querystring before the compiled check; Convert only turns numbers, booleans
// and null into strings for a string schema, and path parameters and header values already arrive
// as strings, so on an object of string properties it is the identity. It cost ~5 % of the
// distributed claim path's CPU (decision 210); schemas that do convert (integer query parameters)
// keep it.
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import { Compile } from 'typebox/compile';
import type { TSchema } from 'typebox';

type Compiler = FastifySchemaCompiler<TSchema>;

/** Whether Value.Convert returns every value of this schema unchanged: an object whose properties are all plain strings. */
export function convertsNothing(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  const { type, properties, additionalProperties, patternProperties } = schema as Record<string, unknown>;
  if (type !== 'object' || typeof properties !== 'object' || properties === null || patternProperties !== undefined) return false;
  if (typeof additionalProperties === 'object') return false; // converted by its own schema
  return Object.values(properties).every((property) => isPlainString(property));
}

function isPlainString(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  const { type, anyOf, oneOf, allOf, $ref } = schema as Record<string, unknown>;
  return type === 'string' && anyOf === undefined && oneOf === undefined && allOf === undefined && $ref === undefined;
}

export const validatorCompiler: Compiler = (route) => {
  const { schema, httpPart } = route;
  if (httpPart === 'body' || !convertsNothing(schema)) return TypeBoxValidatorCompiler(route);
  const check = Compile(schema);
  return (value: unknown) => (check.Check(value) ? { value } : { error: check.Errors(value) as never });
};
