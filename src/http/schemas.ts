// Bounded schemas shared by every route: ids, user ids, amounts, pages and the error shape.
import { Type, type Static } from 'typebox';

export const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
const PRINTABLE = '^[\\x21-\\x7E]+$';
const printable = new RegExp(PRINTABLE);
const USER_ID_MAX_LENGTH = 128;
/** A partner's own user identifier: opaque, printable, bounded. */
export const UserId = Type.String({ minLength: 1, maxLength: USER_ID_MAX_LENGTH, pattern: PRINTABLE });
/** UserId's rule, for ids read outside a request (a bulk job's staged lines). */
export const isUserId = (value: string): boolean => value.length <= USER_ID_MAX_LENGTH && printable.test(value);
/** A shop's own order reference: opaque, printable, bounded. */
export const OrderId = Type.String({ minLength: 1, maxLength: 128, pattern: PRINTABLE });
/** Money and points are integers in minor units. */
export const Amount = Type.Integer({ minimum: 1, maximum: 1_000_000_000_000 });
export const Timestamp = Type.String({ format: 'date-time', maxLength: 40 });

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
