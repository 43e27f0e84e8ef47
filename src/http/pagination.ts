// Opaque cursors for keyset pagination. A cursor wraps the sort key of the last item of a page;
// clients must not build them, so they are base64url JSON.
import { AppError } from '../errors.ts';

export const DEFAULT_PAGE_SIZE = 20;

export function encodeCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, isValid: (value: unknown) => value is T): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isValid(value)) return value;
  } catch {
    // fall through to the refusal below
  }
  throw new AppError('VALIDATION_FAILED', 'querystring.cursor: not a cursor returned by this API', [
    { field: 'querystring.cursor', message: 'not a cursor returned by this API' },
  ]);
}

/** Given `limit + 1` rows, returns the page and the cursor of its last item when more remain. */
export function toPage<Row, Item>(rows: Row[], limit: number, toItem: (row: Row) => Item, cursorOf: (row: Row) => unknown) {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { items: pageRows.map(toItem), nextCursor: hasMore && last !== undefined ? encodeCursor(cursorOf(last)) : null };
}

export const isUuidString = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
