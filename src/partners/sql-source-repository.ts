// SQL for partners' registered SQL sources (migrations/065_partner_sql_sources.sql).
import type { Queryable } from '../infra/db.ts';

export interface SqlSourceRow {
  partnerId: string;
  sealedUrl: Buffer;
  host: string;
  database: string;
  username: string;
  updatedAt: Date;
}

const COLUMNS = 'partner_id AS "partnerId", sealed_url AS "sealedUrl", host, database, username, updated_at AS "updatedAt"';

/** Registers or replaces the partner's source; undefined when the partner does not exist. */
export async function upsertSqlSource(db: Queryable, source: Omit<SqlSourceRow, 'updatedAt'>): Promise<SqlSourceRow | undefined> {
  const { rows } = await db.query<SqlSourceRow>(
    `INSERT INTO partner_sql_sources (partner_id, sealed_url, host, database, username)
     SELECT id, $2, $3, $4, $5 FROM partners WHERE id = $1
     ON CONFLICT (partner_id) DO UPDATE
       SET sealed_url = excluded.sealed_url, host = excluded.host, database = excluded.database,
           username = excluded.username, updated_at = now()
     RETURNING ${COLUMNS}`,
    [source.partnerId, source.sealedUrl, source.host, source.database, source.username],
  );
  return rows[0];
}

export async function findSqlSource(db: Queryable, partnerId: string): Promise<SqlSourceRow | undefined> {
  const { rows } = await db.query<SqlSourceRow>(`SELECT ${COLUMNS} FROM partner_sql_sources WHERE partner_id = $1`, [partnerId]);
  return rows[0];
}

export async function deleteSqlSource(db: Queryable, partnerId: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM partner_sql_sources WHERE partner_id = $1', [partnerId]);
  return (rowCount ?? 0) > 0;
}

export async function partnerExists(db: Queryable, partnerId: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM partners WHERE id = $1', [partnerId]);
  return (rowCount ?? 0) > 0;
}
