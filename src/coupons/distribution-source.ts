// The operator-configured read-only source of user ids (STAMPEDE_SOURCE_DATABASE_URL) for
// distributions given as {source: {type: 'sql', query}}. Defence in depth, so a query can only
// read: the text must start with SELECT or WITH; it is sent with the extended protocol, which
// refuses several statements; DECLARE … CURSOR accepts only a plain query (no data-modifying
// WITH); and it runs in a READ ONLY transaction. The operator should also give that URL a role
// that can only read.
import pg from 'pg';
import { AppError } from '../errors.ts';

export const SOURCE_FETCH_ROWS = 10_000;
const PROBE_TIMEOUT_MS = 10_000;

/** The query as it will be declared, or a refusal. */
export function normaliseSourceQuery(query: string): string {
  const text = query.trim().replace(/;\s*$/, '');
  if (!/^(select|with)\b/i.test(text)) {
    throw new AppError('SOURCE_QUERY_REJECTED', 'The source query must be a single SELECT (or WITH … SELECT).');
  }
  return text;
}

async function withSourceCursor<T>(url: string, query: string, timeoutMs: number | undefined, work: (fetch: (rows: number) => Promise<pg.QueryArrayResult>) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // surfaced by the failing query instead
  await client.connect();
  try {
    // REPEATABLE READ: the whole read sees one snapshot of the source.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (timeoutMs !== undefined) await client.query(`SET LOCAL statement_timeout = ${timeoutMs}`);
    try {
      // queryMode is supported by pg 8.x but missing from @types/pg.
      await client.query({ text: `DECLARE stampede_source NO SCROLL CURSOR FOR ${query}`, queryMode: 'extended' } as pg.QueryConfig);
    } catch (error) {
      throw new AppError('SOURCE_QUERY_REJECTED', `The source database refused the query: ${(error as Error).message}`);
    }
    return await work((rows) => client.query({ text: `FETCH ${rows} FROM stampede_source`, rowMode: 'array' }));
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

/** Checks before accepting the job that the query runs and returns exactly one column. */
export async function probeSourceQuery(url: string, query: string): Promise<void> {
  await withSourceCursor(url, query, PROBE_TIMEOUT_MS, async (fetch) => {
    let result;
    try {
      result = await fetch(0);
    } catch (error) {
      throw new AppError('SOURCE_QUERY_REJECTED', `The source database refused the query: ${(error as Error).message}`);
    }
    if (result.fields.length !== 1) {
      throw new AppError('SOURCE_QUERY_REJECTED', `The source query must return exactly one column (user ids); it returns ${result.fields.length}.`);
    }
  });
}

/** Streams the query's first column in batches; NULLs are passed on as null. */
export async function readSource(url: string, query: string, onBatch: (values: Array<string | null>) => Promise<void>): Promise<void> {
  await withSourceCursor(url, query, undefined, async (fetch) => {
    for (;;) {
      const { rows } = await fetch(SOURCE_FETCH_ROWS);
      if (rows.length === 0) return;
      await onBatch(rows.map((row) => (row[0] === null || row[0] === undefined ? null : String(row[0]))));
    }
  });
}
