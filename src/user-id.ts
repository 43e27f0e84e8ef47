// A partner's own user identifier: opaque, printable, bounded. One rule for ids a request carries
// (http/schemas.ts's UserId) and ids a bulk job reads from a file or a SQL source.
export const USER_ID_MAX_LENGTH = 128;
/** Printable ASCII, no space: the pattern the OpenAPI document publishes. */
export const PRINTABLE_PATTERN = '^[\\x21-\\x7E]+$';
const printable = new RegExp(PRINTABLE_PATTERN);

export const isUserId = (value: string): boolean => value.length <= USER_ID_MAX_LENGTH && printable.test(value);
