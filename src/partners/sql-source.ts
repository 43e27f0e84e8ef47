// A partner's own SQL source of user ids, for distributions given as {source: {type: 'sql', query}}.
// The operator registers it per partner (PUT /v1/partners/{id}/sql-source; stored sealed); there
// is no source shared by all partners. Before every use the connection must prove that it cannot
// reach what belongs to others (assertSourceAllowed); the query can only read (it must start with
// SELECT or WITH; the extended protocol refuses several statements; DECLARE … CURSOR accepts only a
// plain query; it runs in a READ ONLY transaction), each FETCH has a statement timeout, enforced on
// both ends, and a job reads at most STAMPEDE_SOURCE_MAX_ROWS rows.
//
// Nothing the source says reaches the partner as text: failures carry a catalogued code and the
// SQLSTATE (a PostgreSQL message may quote row values: `invalid input syntax for type integer: "…"`).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import type { Queryable } from '../infra/db.ts';
import { openSecret } from '../infra/secret-box.ts';
import { findSqlSource } from './sql-source-repository.ts';

export const SOURCE_FETCH_ROWS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;
/** The probe at POST time answers the partner's request: it gets less time than a job's FETCH. */
const PROBE_TIMEOUT_MS = 10_000;
/** Client-side margin over the server's statement_timeout (which the query itself could lower or lift). */
const CLIENT_TIMEOUT_MARGIN_MS = 2_000;

/** The query as it will be declared, or a refusal. */
export function normaliseSourceQuery(query: string): string {
  const text = query.trim().replace(/;\s*$/, '');
  if (!/^(select|with)\b/i.test(text)) {
    throw new AppError('SOURCE_QUERY_REJECTED', 'The source query must be a single SELECT (or WITH … SELECT).');
  }
  return text;
}

/** Where a connection string points, for GET (never its password). */
export function describeSourceUrl(url: string): { host: string; database: string; username: string } {
  const parsed = new URL(url);
  return {
    host: decodeURIComponent(parsed.host || parsed.searchParams.get('host') || ''),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')),
    username: decodeURIComponent(parsed.username),
  };
}

/** The partner's registered connection string, opened; a refusal when there is none. */
export async function partnerSourceUrl(ctx: AppContext, partnerId: string): Promise<string> {
  const row = await findSqlSource(ctx.db, partnerId);
  if (!row) throw new AppError('SOURCE_NOT_CONFIGURED');
  if (!ctx.config.secretKey) throw new AppError('SECRET_KEY_NOT_CONFIGURED');
  try {
    return openSecret(ctx.config.secretKey, row.sealedUrl, partnerId);
  } catch {
    // Sealed under another key (STAMPEDE_SECRET_KEY changed): the operator registers it again.
    throw new AppError('SOURCE_NOT_CONFIGURED', 'The partner\'s SQL source cannot be opened with the current STAMPEDE_SECRET_KEY; register it again.');
  }
}

const sqlstateOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
};

/** A source failure as a catalogued error: code, SQLSTATE and position only. */
function sourceFailure(error: unknown, where: string): AppError {
  if (error instanceof AppError) return error;
  const state = sqlstateOf(error);
  if (state === '57014' || /timeout/i.test(String((error as Error)?.message))) {
    return new AppError('SOURCE_TIMEOUT', `The source query ran past its statement timeout ${where}.`);
  }
  if (state === undefined || state.startsWith('08') || state.startsWith('28') || state.startsWith('57P') || state === '3D000') {
    return new AppError('SOURCE_UNREACHABLE', `The SQL source went away ${where}${state ? ` (SQLSTATE ${state})` : ''}.`, state ? { sqlstate: state } : undefined);
  }
  return new AppError('SOURCE_QUERY_FAILED', `The source query failed ${where} (SQLSTATE ${state}).`, { sqlstate: state });
}

class BatchFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('the batch callback failed');
  }
}

interface SourceConnection {
  readonly client: pg.Client;
  readonly pid: number;
  /** Stops whatever the session runs now (best effort), then drops the connection. */
  kill(): Promise<void>;
}

async function connectSource(url: string, timeoutMs: number): Promise<SourceConnection> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: timeoutMs,
    // Our own clock too: the query could SET its own statement_timeout.
    query_timeout: timeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
    idle_in_transaction_session_timeout: timeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
    application_name: 'stampede-source',
    keepAlive: true,
  });
  client.on('error', () => undefined); // surfaced by the failing query instead
  let pid: number;
  try {
    await client.connect();
    pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  } catch (error) {
    destroy(client);
    const state = sqlstateOf(error);
    throw new AppError('SOURCE_UNREACHABLE', `The SQL source refused or did not answer the connection${state ? ` (SQLSTATE ${state})` : ''}.`, state ? { sqlstate: state } : undefined);
  }
  let killed: Promise<void> | undefined;
  const kill = () => {
    killed ??= (async () => {
      // The backend would otherwise run on until its statement timeout (a socket closed under a
      // pg_sleep is noticed only when it ends). A role may cancel its own sessions.
      const canceller = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000, statement_timeout: 2_000 });
      canceller.on('error', () => undefined);
      try {
        await canceller.connect();
        await canceller.query('SELECT pg_cancel_backend($1)', [pid]);
      } catch {
        // best effort: the statement timeout stops it anyway
      } finally {
        destroy(canceller);
        destroy(client);
      }
    })();
    return killed;
  };
  return { client, pid, kill };
}

/** Drops the socket at once: end() would wait for the server while a query runs. */
function destroy(client: pg.Client): void {
  void client.end().catch(() => undefined);
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * The connection may be used as a partner's source only if it cannot read what belongs to others:
 * - not a superuser, nor a member of one (SET ROLE), nor of the roles that read or run server files
 *   (pg_read_file, COPY … PROGRAM);
 * - not connected to Stampede's own database. PostgreSQL cannot query across databases, so an
 *   ordinary role on any other database cannot read Stampede's tables. Advisory locks are scoped
 *   to one database of one cluster: `stampede` (a session on Stampede's database) holds a random
 *   lock, and the source session can take the same lock only if it is somewhere else.
 */
export async function assertSourceAllowed(source: pg.Client, stampede: Queryable): Promise<void> {
  const { rows: [role] } = await source.query<{ superuser: boolean; server_files: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolsuper AND pg_has_role(current_user, r.oid, 'MEMBER')) AS superuser,
            EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program')
                                               AND pg_has_role(current_user, r.oid, 'MEMBER')) AS server_files`,
  );
  if (role!.superuser || role!.server_files) throw new AppError('SOURCE_NOT_ALLOWED', 'The SQL source connects as a superuser or a role that reads server files.');
  const nonce = randomBytes(8).readBigInt64BE().toString();
  await stampede.query('SELECT pg_advisory_lock($1::bigint)', [nonce]);
  try {
    const { rows: [probe] } = await source.query<{ free: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS free', [nonce]);
    if (!probe!.free) throw new AppError('SOURCE_NOT_ALLOWED', 'The SQL source is Stampede\'s own database.');
    await source.query('SELECT pg_advisory_unlock($1::bigint)', [nonce]);
  } finally {
    await stampede.query('SELECT pg_advisory_unlock($1::bigint)', [nonce]);
  }
}

/** assertSourceAllowed with a Stampede session taken from the pool for the moment of the check. */
async function checkSource(ctx: AppContext, source: pg.Client): Promise<void> {
  const stampede = await ctx.db.connect();
  try {
    await assertSourceAllowed(source, stampede);
  } catch (error) {
    throw sourceFailure(error, 'when checked');
  } finally {
    stampede.release();
  }
}

/** Connects, checks the connection (assertSourceAllowed) and hangs up: for registration. */
export async function verifySourceUrl(ctx: AppContext, url: string): Promise<void> {
  const source = await connectSource(url, PROBE_TIMEOUT_MS);
  try {
    await checkSource(ctx, source.client);
  } finally {
    destroy(source.client);
  }
}

async function declareCursor(source: pg.Client, query: string, timeoutMs: number): Promise<void> {
  // REPEATABLE READ: the whole read sees one snapshot of the source.
  await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await source.query(`SET LOCAL statement_timeout = ${Math.trunc(timeoutMs)}`);
  try {
    // queryMode is supported by pg 8.x but missing from @types/pg.
    await source.query({ text: `DECLARE stampede_source NO SCROLL CURSOR FOR ${query}`, queryMode: 'extended' } as pg.QueryConfig);
  } catch (error) {
    const state = sqlstateOf(error);
    if (state === '57014') throw sourceFailure(error, 'when declared');
    throw new AppError('SOURCE_QUERY_REJECTED', `The source database refused the query${state ? ` (SQLSTATE ${state})` : ''}.`, state ? { sqlstate: state } : undefined);
  }
}

/** Checks before accepting the job that the source is allowed and the query returns exactly one column. */
export async function probeSourceQuery(ctx: AppContext, partnerId: string, query: string): Promise<void> {
  const url = await partnerSourceUrl(ctx, partnerId);
  const timeoutMs = Math.min(PROBE_TIMEOUT_MS, ctx.config.sourceStatementTimeoutMs);
  const source = await connectSource(url, timeoutMs);
  try {
    await checkSource(ctx, source.client);
    await declareCursor(source.client, query, timeoutMs);
    let result;
    try {
      result = await source.client.query({ text: 'FETCH 0 FROM stampede_source', rowMode: 'array' });
    } catch (error) {
      throw new AppError('SOURCE_QUERY_REJECTED', `The source database refused the query${sqlstateOf(error) ? ` (SQLSTATE ${sqlstateOf(error)})` : ''}.`);
    }
    if (result.fields.length !== 1) {
      throw new AppError('SOURCE_QUERY_REJECTED', `The source query must return exactly one column (user ids); it returns ${result.fields.length}.`);
    }
  } finally {
    destroy(source.client);
  }
}

/**
 * Streams the query's first column in batches (NULLs passed on as null) from the partner's source,
 * checked first. `signal` stops it at once: the source's statement is cancelled and its connection
 * dropped, and this rejects with the signal's reason. Any failure is a catalogued AppError.
 */
export async function readSource(
  ctx: AppContext, stampede: Queryable, partnerId: string, query: string, signal: AbortSignal,
  onBatch: (values: Array<string | null>) => Promise<void>,
): Promise<void> {
  const url = await partnerSourceUrl(ctx, partnerId);
  const timeoutMs = ctx.config.sourceStatementTimeoutMs;
  signal.throwIfAborted();
  const source = await connectSource(url, timeoutMs);
  const onAbort = () => void source.kill();
  signal.addEventListener('abort', onAbort, { once: true });
  let rows = 0;
  try {
    await assertSourceAllowed(source.client, stampede);
    await declareCursor(source.client, query, timeoutMs);
    for (;;) {
      const { rows: batch } = await source.client.query<unknown[]>({ text: `FETCH ${SOURCE_FETCH_ROWS} FROM stampede_source`, rowMode: 'array' });
      if (batch.length === 0) return;
      rows += batch.length;
      if (rows > ctx.config.sourceMaxRows) throw new AppError('SOURCE_ROW_LIMIT', `The source query returned more than ${ctx.config.sourceMaxRows} rows.`);
      signal.throwIfAborted();
      try {
        await onBatch(batch.map((row) => (row[0] === null || row[0] === undefined ? null : String(row[0]))));
      } catch (error) {
        throw new BatchFailure(error);
      }
    }
  } catch (error) {
    signal.throwIfAborted();
    // The caller's own failure (writing to Stampede's database) is not the source's.
    if (error instanceof BatchFailure) throw error.cause;
    throw sourceFailure(error, rows === 0 ? 'before its first row' : `after row ${rows}`);
  } finally {
    signal.removeEventListener('abort', onAbort);
    destroy(source.client);
  }
}
