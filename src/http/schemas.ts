// Bounded schemas shared by every route: ids, user ids, free text, amounts, timestamps, pages and
// the error shape. Every string a client sends is bounded here; nothing reaches PostgreSQL that it
// would refuse (a NUL byte, a lone surrogate in JSON, a year 0 or 10000 timestamp).
import { registerAjvFormats } from '@fastify/type-provider-typebox';
import { Type, type Static, type TStringOptions } from 'typebox';
import Format from 'typebox/format';
import { PRINTABLE_PATTERN, USER_ID_MAX_LENGTH } from '../user-id.ts';

export const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
const PRINTABLE = PRINTABLE_PATTERN;
/** A partner's own user identifier (src/user-id.ts's rule, as a schema). */
export const UserId = Type.String({ minLength: 1, maxLength: USER_ID_MAX_LENGTH, pattern: PRINTABLE });
/** A shop's own order reference on coupons: opaque, printable, bounded. */
export const OrderId = Type.String({ minLength: 1, maxLength: 128, pattern: PRINTABLE });

// No C0/C1 control character (NUL included: PostgreSQL refuses it in text) and no unpaired
// surrogate (PostgreSQL refuses it in jsonb). TypeBox compiles patterns with the `u` flag, so an
// astral character (emoji) is one code point here and passes.
const SINGLE_LINE = '^[^\\x00-\\x1F\\x7F-\\x9F\\uD800-\\uDFFF]*$';
const MULTI_LINE = '^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F\\uD800-\\uDFFF]*$';
const singleLine = new RegExp(SINGLE_LINE, 'u');
/**
 * The one schema of free text (names, descriptions, reasons, order ids, keys): 1..maxLength
 * characters, no control characters; `multiLine` admits tab, LF and CR (an SQL query).
 */
export const Text = (maxLength: number, options: TStringOptions & { multiLine?: boolean } = {}) => {
  const { multiLine, ...rest } = options;
  return Type.String({ minLength: 1, maxLength, pattern: multiLine ? MULTI_LINE : SINGLE_LINE, ...rest });
};
/** Text's rule, for strings read outside a request (CSV lines, staged items). */
export const isText = (value: string, maxLength: number): boolean =>
  value.length >= 1 && value.length <= maxLength && singleLine.test(value);

/** What a refused pattern means, in words (the pattern itself is in the OpenAPI document). */
export function patternMeaning(pattern: unknown): string | undefined {
  if (pattern === SINGLE_LINE) return 'must not contain control characters or unpaired surrogates';
  if (pattern === MULTI_LINE) return 'must not contain control characters other than tab and line breaks';
  if (pattern === PRINTABLE) return 'must be printable ASCII without spaces';
  if (pattern === TIMESTAMP) return 'must be an RFC 3339 date-time in the years 1970 to 9999, seconds 00 to 59';
  return undefined;
}

/** Money and points are integers in minor units. */
export const MAX_AMOUNT = 1_000_000_000_000;
export const Amount = Type.Integer({ minimum: 1, maximum: MAX_AMOUNT });

// RFC 3339 as both JavaScript and PostgreSQL read it: years 1970-9999, no leap second (:60; Date
// refuses it), an offset of at most ±23:59; the instant itself (offset applied) must also fall in
// 1970-9999, or toISOString() writes a six-digit year PostgreSQL cannot read.
const TIMESTAMP = '^(19[7-9]\\d|[2-9]\\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,9})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)$';
const timestampShape = new RegExp(TIMESTAMP);
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
export const isTimestamp = (value: string): boolean => {
  if (!timestampShape.test(value)) return false;
  const instant = Date.parse(value);
  // Date.parse rolls 2030-02-30 over to March 2: the day must exist in its month.
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  return Number.isFinite(instant) && instant >= EARLIEST && instant <= LATEST
    && new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
};
export const Timestamp = Type.String({ format: 'date-time', maxLength: 40, pattern: TIMESTAMP });

/**
 * Registers the string formats, with `date-time` narrowed to isTimestamp. Call before routes compile
 * (app.ts does, at import): every `date-time` field, wherever declared, then gets the narrow rule.
 */
export function registerFormats(): void {
  registerAjvFormats();
  const rfc3339 = Format.Get('date-time') ?? (() => true);
  Format.Set('date-time', (value) => rfc3339(value) && isTimestamp(value));
}

export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type PageQuery = Static<typeof PageQuery>;

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  }),
});

/** Page envelope: `{items, nextCursor}`; nextCursor is null on the last page. */
export const Page = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });
