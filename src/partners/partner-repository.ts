// SQL for partners and API keys.
import type { Queryable } from '../infra/db.ts';

export interface PartnerRow {
  id: string;
  name: string;
  rateLimitPerSecond: number | null;
  /** How many days ahead the points.expiring digest looks. */
  pointsExpiringNoticeDays: number;
  createdAt: Date;
}

export interface KeyPrincipalRow {
  keyId: string;
  partnerId: string;
  rateLimitPerSecond: number | null;
  revoked: boolean;
}

const PARTNER_COLUMNS = 'id, name, rate_limit_per_second AS "rateLimitPerSecond", points_expiring_notice_days AS "pointsExpiringNoticeDays", created_at AS "createdAt"';

export async function insertPartner(db: Queryable, partner: { id: string; name: string; rateLimitPerSecond: number | null }): Promise<PartnerRow> {
  const { rows } = await db.query<PartnerRow>(
    `INSERT INTO partners (id, name, rate_limit_per_second) VALUES ($1, $2, $3) RETURNING ${PARTNER_COLUMNS}`,
    [partner.id, partner.name, partner.rateLimitPerSecond],
  );
  return rows[0]!;
}

/** Changes the settings given (undefined: left as is). */
export async function updatePartnerSettings(
  db: Queryable, partnerId: string, settings: { rateLimitPerSecond?: number | null | undefined; pointsExpiringNoticeDays?: number | undefined },
): Promise<PartnerRow | undefined> {
  const { rows } = await db.query<PartnerRow>(
    `UPDATE partners SET rate_limit_per_second = CASE WHEN $2 THEN $3::integer ELSE rate_limit_per_second END,
                         points_expiring_notice_days = coalesce($4::integer, points_expiring_notice_days)
      WHERE id = $1 RETURNING ${PARTNER_COLUMNS}`,
    [partnerId, settings.rateLimitPerSecond !== undefined, settings.rateLimitPerSecond ?? null, settings.pointsExpiringNoticeDays ?? null],
  );
  return rows[0];
}

export async function insertApiKey(db: Queryable, key: { id: string; partnerId: string; prefix: string; hash: Buffer }): Promise<void> {
  await db.query('INSERT INTO api_keys (id, partner_id, prefix, key_hash) VALUES ($1, $2, $3, $4)', [key.id, key.partnerId, key.prefix, key.hash]);
}

/** Marks a key revoked; returns its hash so caches can be told, or undefined if unknown. */
export async function revokeApiKey(db: Queryable, keyId: string): Promise<Buffer | undefined> {
  const { rows } = await db.query<{ hash: Buffer }>(
    'UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING key_hash AS hash',
    [keyId],
  );
  return rows[0]?.hash;
}

export async function findKeyPrincipal(db: Queryable, hash: Buffer): Promise<KeyPrincipalRow | undefined> {
  const { rows } = await db.query<KeyPrincipalRow>(
    `SELECT k.id AS "keyId", k.partner_id AS "partnerId", p.rate_limit_per_second AS "rateLimitPerSecond",
            k.revoked_at IS NOT NULL AS revoked
       FROM api_keys k JOIN partners p ON p.id = k.partner_id
      WHERE k.key_hash = $1`,
    [hash],
  );
  return rows[0];
}

export async function keyHashesOfPartner(db: Queryable, partnerId: string): Promise<Buffer[]> {
  const { rows } = await db.query<{ hash: Buffer }>('SELECT key_hash AS hash FROM api_keys WHERE partner_id = $1', [partnerId]);
  return rows.map((row) => row.hash);
}
