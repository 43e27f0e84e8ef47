// SQL of the template change audit (table template_changes, migration 070): every change to a
// claim event's settings, with the API key that made it and the changed fields before and after.
import type { Queryable } from '../infra/db.ts';
import type { FieldValues } from './template-change-rules.ts';

export interface TemplateChange {
  id: string;
  templateId: string;
  apiKeyId: string | null;
  changedAt: Date;
  before: FieldValues;
  after: FieldValues;
}

interface ChangeRow {
  id: string;
  template_id: string;
  api_key_id: string | null;
  changed_at: Date;
  before: FieldValues;
  after: FieldValues;
}

const toChange = (row: ChangeRow): TemplateChange => ({
  id: row.id, templateId: row.template_id, apiKeyId: row.api_key_id, changedAt: row.changed_at, before: row.before, after: row.after,
});

export async function insertTemplateChange(
  db: Queryable, change: { id: string; templateId: string; partnerId: string; apiKeyId: string | null; changedAt: Date; before: FieldValues; after: FieldValues },
): Promise<TemplateChange> {
  const { rows } = await db.query<ChangeRow>(
    `INSERT INTO template_changes (id, template_id, partner_id, api_key_id, changed_at, before, after)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) RETURNING *`,
    [change.id, change.templateId, change.partnerId, change.apiKeyId, change.changedAt, JSON.stringify(change.before), JSON.stringify(change.after)],
  );
  return toChange(rows[0]!);
}

/** Newest first; `before` is the id of the last change of the previous page. Scoped by partner. */
export async function listTemplateChanges(db: Queryable, partnerId: string, templateId: string, limit: number, before?: string): Promise<TemplateChange[]> {
  const { rows } = await db.query<ChangeRow>(
    `SELECT * FROM template_changes
      WHERE template_id = $1 AND partner_id = $2 AND ($3::uuid IS NULL OR id < $3::uuid)
      ORDER BY id DESC LIMIT $4`,
    [templateId, partnerId, before ?? null, limit],
  );
  return rows.map(toChange);
}
