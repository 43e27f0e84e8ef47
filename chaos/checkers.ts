// Checks over a chaos run's history once everything is healed and drained. Each returns the
// violations it found (empty: the promise held) and what it checked, for the final JSON line.
import { isDeepStrictEqual } from 'node:util';
import type { Db } from '../src/infra/db.ts';
import { checkPointsInvariants } from '../src/points/invariants.ts';
import type { History } from './load.ts';

export interface Verdict { readonly checked: number; readonly lost: number; readonly violations: string[] }

/** Answers during faults are 200/201/409/503, or none (the process was down); never a 500 or a 400. */
export function checkAnswers(history: History): Verdict & { byStatus: Record<string, number> } {
  const byStatus: Record<string, number> = {};
  const violations: string[] = [];
  for (const a of history.attempts) {
    byStatus[String(a.status)] = (byStatus[String(a.status)] ?? 0) + 1;
    if (a.status !== 'none' && ![200, 201, 409, 503].includes(a.status)) violations.push(`${a.op} answered ${a.status} ${a.code ?? ''} at +${a.t} ms`);
  }
  return { checked: history.attempts.length, lost: 0, violations: dedupe(violations), byStatus };
}

/** Every 201 is a row exactly once; no event over its stock, no user over its limit, no slot twice. */
export async function checkClaims(db: Db, history: History, templates: ReadonlyArray<{ id: string; totalQuantity: number; perUserLimit: number }>): Promise<Verdict> {
  const violations: string[] = [];
  const ids = history.claims.map((c) => c.couponId);
  const { rows: found } = await db.query<{ id: string; user_id: string; template_id: string }>('SELECT id, user_id, template_id FROM coupons WHERE id = ANY($1::uuid[])', [ids]);
  const byId = new Map(found.map((row) => [row.id, row]));
  let lost = 0;
  for (const claim of history.claims) {
    const row = byId.get(claim.couponId);
    if (!row) { lost += 1; violations.push(`claim ${claim.couponId} (${claim.userId}) answered 201 but is not in PostgreSQL`); }
    else if (row.user_id !== claim.userId || row.template_id !== claim.templateId) violations.push(`coupon ${claim.couponId} belongs to ${row.user_id}/${row.template_id}`);
  }
  if (new Set(ids).size !== ids.length) violations.push('the same coupon id was answered to two claims');
  for (const t of templates) {
    const { rows: [counts] } = await db.query<{ rows: number; issued: number }>(
      'SELECT (SELECT count(*)::int FROM coupons WHERE template_id = $1) AS rows, (SELECT issued_count FROM coupon_templates WHERE id = $1) AS issued', [t.id]);
    if (counts!.rows > t.totalQuantity) violations.push(`template ${t.id}: ${counts!.rows} coupons over a stock of ${t.totalQuantity}`);
    if (counts!.rows !== counts!.issued) violations.push(`template ${t.id}: issued_count ${counts!.issued} but ${counts!.rows} rows`);
    const { rows: over } = await db.query('SELECT user_id, count(*)::int AS n FROM coupons WHERE template_id = $1 GROUP BY user_id HAVING count(*) > $2', [t.id, t.perUserLimit]);
    for (const row of over) violations.push(`template ${t.id}: user ${String(row.user_id)} holds ${String(row.n)} (limit ${t.perUserLimit})`);
    const { rows: slots } = await db.query('SELECT slot FROM coupons WHERE template_id = $1 AND slot IS NOT NULL GROUP BY slot HAVING count(*) > 1', [t.id]);
    for (const row of slots) violations.push(`template ${t.id}: slot ${String(row.slot)} issued twice`);
  }
  return { checked: history.claims.length, lost, violations };
}

/**
 * Every redemption answered 200 is in the history table exactly once; a coupon whose last
 * operation was answered reads as that answer left it (USED with its order, or ISSUED).
 */
export async function checkRedemptions(db: Db, history: History): Promise<Verdict> {
  const violations: string[] = [];
  const redeemed = history.couponOps.filter((op) => op.op === 'redeem' && op.answer === 200);
  const { rows } = await db.query<{ coupon_id: string; order_id: string; n: number }>(
    'SELECT coupon_id, order_id, count(*)::int AS n FROM coupon_redemptions WHERE coupon_id = ANY($1::uuid[]) GROUP BY coupon_id, order_id',
    [[...new Set(redeemed.map((op) => op.couponId))]]);
  const count = new Map(rows.map((row) => [`${row.coupon_id}/${row.order_id}`, row.n]));
  let lost = 0;
  for (const op of redeemed) {
    const n = count.get(`${op.couponId}/${op.orderId}`) ?? 0;
    if (n === 0) lost += 1;
    if (n !== 1) violations.push(`redemption of ${op.couponId} on ${op.orderId} answered 200, ${n} rows`);
  }
  const last = new Map<string, History['couponOps'][number]>();
  for (const op of history.couponOps) last.set(op.couponId, op);
  const settled = [...last.values()].filter((op) => op.answer === 200);
  const { rows: coupons } = await db.query<{ id: string; status: string; order_id: string | null }>(
    'SELECT id, status, order_id FROM coupons WHERE id = ANY($1::uuid[])', [settled.map((op) => op.couponId)]);
  const state = new Map(coupons.map((row) => [row.id, row]));
  for (const op of settled) {
    const row = state.get(op.couponId);
    const expected = op.op === 'redeem' ? 'USED' : 'ISSUED';
    if (row?.status !== expected || (expected === 'USED' && row.order_id !== op.orderId)) {
      violations.push(`coupon ${op.couponId}: last answer ${op.op} 200 on ${op.orderId}, reads ${row?.status ?? 'missing'} ${row?.order_id ?? ''}`);
    }
  }
  return { checked: redeemed.length + settled.length, lost, violations };
}

/**
 * Every points call answered (201, or a stored 409) is recorded with that very answer, and every
 * transaction belongs to exactly one call; the ledger's invariants hold for every wallet.
 */
export async function checkPoints(db: Db, history: History, partnerId: string): Promise<Verdict> {
  const violations: string[] = [];
  const { rows } = await db.query<{ key: string; status_code: number; response: unknown }>(
    'SELECT idempotency_key AS key, status_code, response FROM point_idempotency WHERE partner_id = $1', [partnerId]);
  const stored = new Map(rows.map((row) => [row.key, row]));
  let lost = 0;
  let checked = 0;
  for (const call of history.points) {
    if (call.status === undefined) { violations.push(`points call ${call.key} never got a definitive answer`); continue; }
    if (call.status !== 201 && call.status !== 409) { violations.push(`points call ${call.key} answered ${call.status}`); continue; }
    checked += 1;
    const record = stored.get(call.key);
    if (!record) { if (call.status === 201) { lost += 1; violations.push(`points call ${call.key} answered 201 but has no record`); } continue; }
    if (record.status_code !== call.status || !isDeepStrictEqual(record.response, call.answer)) violations.push(`points call ${call.key}: answered ${call.status}, recorded ${record.status_code}`);
  }
  // Each call's transaction once: no transaction without its call (TRANSFER_IN hangs off its TRANSFER_OUT; EXPIRE is the sweep's).
  // One aggregate joined, not a subquery per transaction: point_idempotency has no index on
  // transaction_id, and per-row lookups ran for over 10 minutes on a 30-minute run's history.
  const { rows: [orphans] } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM point_transactions t
       LEFT JOIN (SELECT transaction_id, count(*) AS calls FROM point_idempotency
                   WHERE partner_id = $1 AND transaction_id IS NOT NULL GROUP BY transaction_id) r ON r.transaction_id = t.id
      WHERE t.partner_id = $1 AND t.type NOT IN ('TRANSFER_IN', 'EXPIRE') AND coalesce(r.calls, 0) <> 1`, [partnerId]);
  if (orphans!.n > 0) violations.push(`${orphans!.n} points transactions not recorded exactly once`);
  violations.push(...(await checkPointsInvariants(db, { partnerId })).violations);
  return { checked, lost, violations };
}

function dedupe(lines: string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) { const key = line.replace(/ at \+\d+ ms$/, ''); counts.set(key, (counts.get(key) ?? 0) + 1); }
  return [...counts].map(([line, n]) => (n > 1 ? `${line} (×${n})` : line));
}
