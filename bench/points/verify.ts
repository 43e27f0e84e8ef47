// Exact verification of a bench:points run: every answer against the plan, and the database
// against the answers. For the product any 5xx, lost request, unexpected refusal, retry that did
// not replay the first answer, count mismatch or invariant violation is a problem. The baseline is
// held to consistency only (Σ balances = seed + earned − used); its 5xx are its figures.
import type { Db } from '../../src/infra/db.ts';
import { checkPointsInvariants } from '../../src/points/invariants.ts';
import type { Answer } from './load-generator.ts';
import type { PlannedRequest } from './workload.ts';

export interface Tally {
  readonly requests: number;
  readonly applied: { earn: number; use: number; transfer: number };
  readonly insufficient: number;
  readonly replayed: number;
  readonly serverErrors: number;
  readonly deadlocksSurfaced: number;
  readonly transportErrors: number;
  readonly earned: number;
  readonly used: number;
  readonly problems: string[];
}

/** Counts the answers against the plan (no database); problems only for the product. */
export function tally(requests: readonly PlannedRequest[], answers: readonly Answer[], design: 'stampede' | 'baseline'): Tally {
  const applied = { earn: 0, use: 0, transfer: 0 };
  let insufficient = 0, replayed = 0, serverErrors = 0, deadlocksSurfaced = 0, transportErrors = 0, earned = 0, used = 0, sent = 0;
  const problems: string[] = [];
  const problem = (text: string) => { if (problems.length < 20) problems.push(text); };
  requests.forEach((request, i) => {
    const [first, retry] = answers[i]!;
    for (const [status, body] of retry ? [first, retry] : [first]) {
      sent++;
      if (status === 0) transportErrors++;
      if (status >= 500) serverErrors++;
      if (status >= 500 && body.includes('deadlock')) deadlocksSurfaced++;
    }
    const [status, body] = first;
    if (status === 201) {
      applied[request.kind]++;
      if (request.kind === 'earn') earned += request.body.amount as number;
      if (request.kind === 'use') used += request.body.amount as number;
    } else if (status === 409 && body.includes('"INSUFFICIENT_POINTS"') && request.kind !== 'earn') {
      insufficient++;
    } else if (design === 'stampede') {
      problem(`${request.key} (${request.kind}): unexpected answer ${status} ${body.slice(0, 200)}`);
    }
    if (!retry) return;
    const replay = design === 'stampede' ? retry[0] === first[0] && retry[1] === first[1] : retry[0] === 200;
    if (replay) replayed++;
    else if (design === 'stampede') problem(`${request.key}: the retry answered ${retry[0]} ${retry[1].slice(0, 200)}, not the first answer`);
  });
  if (design === 'stampede' && serverErrors + transportErrors > 0) problems.unshift(`${serverErrors} 5xx and ${transportErrors} lost requests`);
  return { requests: sent, applied, insufficient, replayed, serverErrors, deadlocksSurfaced, transportErrors, earned, used, problems };
}

export async function verifyLedger(db: Db, partnerId: string, requests: readonly PlannedRequest[], answers: readonly Answer[], seed: { wallets: number; balance: number }): Promise<Tally> {
  const result = tally(requests, answers, 'stampede');
  const { rows } = await db.query<{ type: string; n: number }>(
    'SELECT type, count(*)::int AS n FROM point_transactions WHERE partner_id = $1 GROUP BY type', [partnerId]);
  const counts = Object.fromEntries(rows.map((row) => [row.type, row.n]));
  const expected = { EARN: seed.wallets + result.applied.earn, USE: result.applied.use, TRANSFER_OUT: result.applied.transfer, TRANSFER_IN: result.applied.transfer };
  for (const [type, n] of Object.entries(expected)) {
    if ((counts[type] ?? 0) !== n) result.problems.push(`${type}: ${counts[type] ?? 0} transactions in the ledger, ${n} answered 201`);
  }
  for (const type of ['CANCEL_EARN', 'CANCEL_USE', 'EXPIRE']) if (counts[type]) result.problems.push(`${counts[type]} unexpected ${type}`);
  const keys = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM point_idempotency WHERE partner_id = $1', [partnerId]);
  if (keys.rows[0]!.n !== requests.length) result.problems.push(`${keys.rows[0]!.n} idempotency records for ${requests.length} distinct keys`);
  const report = await checkPointsInvariants(db, { partnerId });
  const expectedTotal = seed.wallets * seed.balance + result.earned - result.used;
  if (report.totalBalance !== expectedTotal) result.problems.push(`Σ balances ${report.totalBalance}, expected ${expectedTotal} (seed + earned − used)`);
  result.problems.push(...report.violations.slice(0, 20));
  return result;
}

export async function verifyBaseline(db: Db, partnerId: string, requests: readonly PlannedRequest[], answers: readonly Answer[], seed: { wallets: number; balance: number }): Promise<Tally> {
  const result = tally(requests, answers, 'baseline');
  const { rows } = await db.query<{ total: number }>('SELECT coalesce(sum(balance), 0)::bigint AS total FROM naive_point_wallets WHERE partner_id = $1', [partnerId]);
  const expectedTotal = seed.wallets * seed.balance + result.earned - result.used;
  if (rows[0]!.total !== expectedTotal) result.problems.push(`baseline Σ balances ${rows[0]!.total}, expected ${expectedTotal}`);
  return result;
}
