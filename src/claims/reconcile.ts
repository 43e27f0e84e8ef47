// `stampede reconcile <templateId>`, and a schedule in the workers process (so that
// stampede_reconcile_drift is scraped and its alert can fire): compares the claim gate's state in
// Redis with PostgreSQL.
// Exact while claims flow: the gate's counters are read first (issued and slot together), then
// the stream, then one PostgreSQL snapshot; only claims up to the slot read are counted, and a
// claim leaves the stream only after its row is committed, so each claim the gate counted is found
// either as a row or as a stream entry.
import type { AppContext, WorkerStarter } from '../context.ts';
import { startCronTask } from '../infra/schedule.ts';
import { CLAIM_EVENT_SETTLE_MS } from '../coupons/gate-lock.ts';
import { claimFromStreamEntry } from './claim-record.ts';
import { recentClaimEvents, reconcileSnapshot, templateCounts, type TemplateCounts } from './claim-repository.ts';
import { templateClaimKeys } from './redis-keys.ts';

const SCAN_CHUNK = 1_000;
/** Claim events checked per scheduled run (the drift gauge is labelled by template, capped anyway). */
const SCHEDULED_EVENTS = 50;

export interface ReconcileReport {
  readonly templateId: string;
  readonly postgres: TemplateCounts;
  /** null: embedded mode (the gate lives in the serve process) or no claim state in Redis. */
  readonly redis: { readonly issued: number; readonly slot: number; readonly unpersisted: number } | null;
  /** Gate's issued count minus the claims found in PostgreSQL or on their way there. */
  readonly drift: number;
  readonly problems: string[];
}

export async function reconcileTemplate(ctx: AppContext, templateId: string): Promise<ReconcileReport | undefined> {
  const problems: string[] = [];
  if (!ctx.redis) {
    const postgres = await templateCounts(ctx.db, templateId);
    if (!postgres) return undefined;
    checkPostgres(postgres, problems);
    return { templateId, postgres, redis: null, drift: 0, problems };
  }
  const keys = templateClaimKeys(templateId);
  const [issued, slot] = await ctx.redis.hmGet(keys.state, ['issued', 'slot']);
  if (issued === null || slot === null || issued === undefined || slot === undefined) {
    const postgres = await templateCounts(ctx.db, templateId);
    if (!postgres) return undefined;
    checkPostgres(postgres, problems);
    return { templateId, postgres, redis: null, drift: 0, problems };
  }
  const gate = { issued: Number(issued), slot: Number(slot) };
  const streamed: string[] = [];
  for (let start = '-'; ;) {
    const entries = (await ctx.redis.xRange(keys.stream, start, '+', { COUNT: SCAN_CHUNK })) ?? [];
    for (const entry of entries) {
      const claim = claimFromStreamEntry(entry.message);
      if (claim.slot <= gate.slot) streamed.push(claim.id);
    }
    if (entries.length < SCAN_CHUNK) break;
    start = `(${entries[entries.length - 1]!.id}`;
  }
  const snapshot = await reconcileSnapshot(ctx.db, templateId, gate.slot, streamed);
  if (!snapshot.counts) return undefined;
  const unpersisted = streamed.filter((id) => !snapshot.present.has(id)).length;
  const drift = gate.issued - (snapshot.rowsUpToSlot + unpersisted);
  checkPostgres(snapshot.counts, problems);
  if (drift !== 0) {
    problems.push(`Redis counts ${gate.issued} coupons issued, PostgreSQL holds ${snapshot.rowsUpToSlot} and ${unpersisted} are on their way (drift ${drift})`);
  }
  if (gate.slot < snapshot.counts.maxSlot) {
    problems.push(`Redis slot counter ${gate.slot} is behind PostgreSQL's highest slot ${snapshot.counts.maxSlot}: new claims would collide`);
  }
  return { templateId, postgres: snapshot.counts, redis: { ...gate, unpersisted }, drift, problems };
}

/**
 * Reconciles every claim event open now or closed less than an hour ago (CLAIM_EVENT_SETTLE_MS,
 * during which distribution into it is refused) that the gate has served, then publishes their drift
 * all at once: a template no longer checked leaves the gauge (its alert resolves) instead of
 * keeping its last value.
 */
export async function reconcileRecentEvents(ctx: AppContext): Promise<{ events: number; drifting: number }> {
  const reports: ReconcileReport[] = [];
  for (const templateId of await recentClaimEvents(ctx.db, ctx.clock(), CLAIM_EVENT_SETTLE_MS, SCHEDULED_EVENTS)) {
    // Only events the gate has served: a template that only received bulk distributions has no
    // gate state to drift, and counting its (possibly millions of) rows every minute would cost.
    if (!ctx.redis || await ctx.redis.exists(templateClaimKeys(templateId).state) === 0) continue;
    const report = await reconcileTemplate(ctx, templateId);
    if (report) reports.push(report);
  }
  ctx.metrics.reconcileDrift.reset();
  for (const report of reports) ctx.metrics.reconcileDrift.set({ template: ctx.metrics.templateLabel(report.templateId) }, report.drift);
  return { events: reports.length, drifting: reports.filter((report) => report.drift !== 0).length };
}

/**
 * Runs reconcileRecentEvents on config.reconcileSchedule (default every minute) in distributed
 * mode. The embedded gate lives in the serve process and has no state apart from PostgreSQL to
 * drift from. Running in several processes at once is harmless (reads only).
 */
export const startReconcileSchedule: WorkerStarter = async (ctx) => {
  if (!ctx.redis) return async () => undefined;
  return startCronTask('claim-reconcile', ctx.config.reconcileSchedule, ctx.logger, () => reconcileRecentEvents(ctx), ctx.config.scheduleIntervalMs);
};

function checkPostgres(postgres: TemplateCounts, problems: string[]): void {
  if (postgres.issuedCount !== postgres.rows) {
    problems.push(`coupon_templates.issued_count is ${postgres.issuedCount} but ${postgres.rows} coupon rows exist`);
  }
}

/** The CLI command: prints the report as JSON; exit code 0 when consistent, 1 on drift, 2 when not found. */
export async function runReconcileCommand(ctx: AppContext, templateId: string | undefined, out: NodeJS.WritableStream): Promise<number> {
  if (!templateId || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(templateId)) {
    out.write('usage: stampede reconcile <templateId (UUID)>\n');
    return 2;
  }
  const report = await reconcileTemplate(ctx, templateId);
  if (!report) {
    out.write(`template ${templateId} not found\n`);
    return 2;
  }
  out.write(`${JSON.stringify(report, null, 2)}\n`);
  out.write(report.problems.length === 0 ? 'consistent: no drift\n' : `DRIFT:\n  - ${report.problems.join('\n  - ')}\n`);
  return report.problems.length === 0 ? 0 : 1;
}
