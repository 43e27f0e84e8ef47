// Fills the coupons table with millions of rows of past events (other templates of another
// partner), so the distributed case can be measured again on grown indexes. Rows are generated
// inside PostgreSQL (generate_series), one event of FILLER_EVENT_SIZE coupons per transaction, ids
// time-ordered like the product's UUIDv7 and older than any coupon the benchmark issues, user ids
// zero-padded so every index grows at its right edge (as it does for real, time-ordered traffic)
// and ten million rows load in minutes, not tens of minutes.
import { v7 as uuidv7 } from 'uuid';
import { insertTemplate } from '../../src/coupons/template-repository.ts';
import { withTransaction, type Db } from '../../src/infra/db.ts';
import { insertPartner } from '../../src/partners/partner-repository.ts';
import { eventDraft } from './servers.ts';

const FILLER_EVENT_SIZE = 100_000;

/** `cancelled`: checked between events, so an interrupted benchmark does not wait for ten million rows. */
/** Returns the rows loaded: `totalRows`, or fewer when cancelled. */
export async function loadFillerCoupons(db: Db, totalRows: number, progress: (rowsSoFar: number) => void, cancelled: () => boolean): Promise<number> {
  const partner = await insertPartner(db, { id: uuidv7(), name: 'bench filler', rateLimitPerSecond: null });
  // Filler ids start at this instant (ms), 30 days ago, 100 coupons per millisecond.
  const originMs = Date.now() - 30 * 86_400_000;
  let nextFirst = 0;
  let done = 0;
  // Two loaders at once: one per core, each event in its own transaction.
  const loader = async () => {
    for (let first = nextFirst; first < totalRows && !cancelled(); first = nextFirst) {
      const size = Math.min(FILLER_EVENT_SIZE, totalRows - first);
      nextFirst += size;
      const template = await insertTemplate(db, uuidv7(), partner.id, eventDraft(size));
      await withTransaction(db, async (tx) => {
        await tx.query(
          `INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, valid_from, valid_until, issued_at)
           SELECT (lpad(to_hex($4::bigint + n / 100), 12, '0') || '7000' || '8' || lpad(to_hex(n), 15, '0'))::uuid,
                  $1, $2, 'filler-' || lpad(n::text, 10, '0'), n - $3 + 1, 1, now(), now() + interval '30 days', now()
             FROM generate_series($3::bigint, $3::bigint + $5 - 1) AS n`,
          [partner.id, template.id, first, originMs, size],
        );
        await tx.query('UPDATE coupon_templates SET issued_count = $2 WHERE id = $1', [template.id, size]);
      });
      done += size;
      progress(done);
    }
  };
  await Promise.all([loader(), loader()]);
  // Vacuum and statistics now, so autovacuum does not wake up on 10M fresh rows mid-measurement.
  await db.query('VACUUM ANALYZE coupons');
  return done;
}
