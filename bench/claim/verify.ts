// The benchmark's own proof that speed did not cost correctness: exact counts from the answers
// and from PostgreSQL. Each check returns the problems it found; none means the run holds.
import type { Db } from '../../src/infra/db.ts';
import type { LoadResult } from './load-generator.ts';

/** Answers a claim may get in this scenario besides 201 (one coupon per user, window open). */
const EXPECTED_REFUSALS = new Set(['409 SOLD_OUT', '409 CLAIM_LIMIT_REACHED']);

/**
 * `failuresAllowed`: answers other than 201/409 (the baseline's pool timeouts under 1,024
 * connections) are its measured behaviour, reported beside its figures, not a broken run; the
 * exact-count checks still hold for it.
 */
export function verifyAnswers(load: LoadResult, expectedRequests: number, quantity: number, failuresAllowed: boolean): string[] {
  const problems: string[] = [];
  if (load.requests !== expectedRequests) problems.push(`${load.requests} answers, expected ${expectedRequests}`);
  const counted = Object.values(load.outcomes).reduce((sum, count) => sum + count, 0);
  if (counted !== load.requests) problems.push(`the answers counted by outcome sum to ${counted}, not ${load.requests}`);
  const issued = load.outcomes['201'] ?? 0;
  if (issued !== quantity) problems.push(`${issued} × 201, expected exactly ${quantity}`);
  const users = new Set(load.acknowledged.map(([, userId]) => userId));
  if (users.size !== load.acknowledged.length) problems.push(`${load.acknowledged.length - users.size} users got more than one coupon`);
  const coupons = new Set(load.acknowledged.map(([couponId]) => couponId));
  if (coupons.size !== load.acknowledged.length) problems.push(`${load.acknowledged.length - coupons.size} coupon ids were handed out twice`);
  if (load.acknowledged.length !== issued) problems.push(`${load.acknowledged.length} coupon ids kept for ${issued} × 201`);
  if (failuresAllowed) return problems;
  const failures = unexpectedOutcomes(load);
  if (failures.length > 0) problems.push(`${failures.join(', ')}; e.g. ${load.unexpectedSamples.join(' | ')}`);
  return problems;
}

/** "239 × 500 INTERNAL_ERROR"-style counts of every answer that is neither 201 nor an expected 409. */
export function unexpectedOutcomes(load: LoadResult): string[] {
  return Object.entries(load.outcomes)
    .filter(([outcome]) => outcome !== '201' && !EXPECTED_REFUSALS.has(outcome))
    .map(([outcome, count]) => `${count} × ${outcome}`);
}

/** The bare routes answer every request with their constant 201. */
export function verifyBareAnswers(load: LoadResult, expectedRequests: number): string[] {
  const answered = load.outcomes['201'] ?? 0;
  return answered === expectedRequests && load.requests === expectedRequests ? [] : [`${answered} × 201 of ${expectedRequests} requests: ${JSON.stringify(load.outcomes)}`];
}

/** Exactly `quantity` rows, slots 1..quantity once each, one per user, and every 201 among them. */
export async function verifyRows(db: Db, templateId: string, quantity: number, acknowledged: LoadResult['acknowledged']): Promise<string[]> {
  const problems: string[] = [];
  const { rows: [shape] } = await db.query<{ rows: number; slots: number; min_slot: number | null; max_slot: number | null; users: number; issued_count: number }>(
    `SELECT count(*)::int AS rows, count(DISTINCT c.slot)::int AS slots, min(c.slot) AS min_slot, max(c.slot) AS max_slot,
            count(DISTINCT c.user_id)::int AS users,
            (SELECT issued_count FROM coupon_templates WHERE id = $1) AS issued_count
       FROM coupons c WHERE c.template_id = $1`,
    [templateId],
  );
  if (shape!.rows !== quantity) problems.push(`${shape!.rows} rows in PostgreSQL, expected exactly ${quantity}`);
  if (shape!.slots !== quantity || shape!.min_slot !== 1 || shape!.max_slot !== quantity) {
    problems.push(`slots: ${shape!.slots} distinct in ${shape!.min_slot}..${shape!.max_slot}, expected 1..${quantity} each once`);
  }
  if (shape!.users !== shape!.rows) problems.push(`${shape!.rows - shape!.users} users hold more than one row`);
  if (shape!.issued_count !== quantity) problems.push(`coupon_templates.issued_count = ${shape!.issued_count}, expected ${quantity}`);

  const { rows: [found] } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n
       FROM unnest($2::uuid[], $3::text[]) AS acked (id, user_id)
       JOIN coupons c ON c.id = acked.id AND c.user_id = acked.user_id AND c.template_id = $1`,
    [templateId, acknowledged.map(([couponId]) => couponId), acknowledged.map(([, userId]) => userId)],
  );
  if (found!.n !== acknowledged.length) problems.push(`${acknowledged.length - found!.n} acknowledged coupons are missing from PostgreSQL`);
  return problems;
}
