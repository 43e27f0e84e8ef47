// Coupon distribution, two steps per staged chunk, in the chunk's transaction: decideChunk
// classifies the lines in Node and decides, with one statement for what needs the users' holdings,
// which coupons to write (user and seq, sorted by user id); writeCoupons writes them with COPY.
// A coupon taken in between makes COPY fail on (template, user, seq): the caller decides again.
// Why COPY and lines in Node, with the measurements: docs/decisions/132-distribution-writes-with-copy.md.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { isUserId } from '../user-id.ts';
import type { Queryable, Tx } from '../infra/db.ts';

export interface ChunkRules {
  jobId: string;
  chunkNo: number;
  templateId: string;
  perUserLimit: number;
  /** Coupons left in a limited template; null: unlimited. */
  remaining: number | null;
  /**
   * Look up holders user by user. Read only when perUserLimit is 1 and the stock unlimited: the
   * other statement always looks them up (a line's seq follows its user's holdings).
   */
  probeHolders: boolean;
}

export interface ChunkCounts {
  lines: number;
  malformed: number;
  /** valid lines within the per-user limit */
  eligible: number;
  /** eligible lines within the stock left */
  attempted: number;
}

export interface ChunkDecision {
  counts: ChunkCounts;
  /** The coupons to write, sorted by user id: their users, and their seqs (undefined: all 1). */
  userIds: string[];
  seqs?: number[];
}

export interface CouponRows {
  partnerId: string;
  templateId: string;
  validFrom: Date;
  validUntil: Date;
  /** The ids' first 12 bytes (couponIdPrefix); the last 4 count the rows. */
  idPrefix: Buffer;
}

/**
 * The first 12 bytes of one chunk's coupon ids; writeCoupons adds a 32-bit counter. UUIDv7 (RFC 9562):
 * the 48-bit millisecond time, the version, 12 random bits, the variant and 30 random bits. Two
 * chunks started in the same millisecond collide only if those 42 bits are equal too; the primary
 * key would then refuse the second chunk's COPY, and the chunk runs again.
 */
export function couponIdPrefix(now: Date): Buffer {
  const prefix = Buffer.alloc(12);
  prefix.writeUIntBE(now.getTime(), 0, 6);
  randomBytes(6).copy(prefix, 6);
  prefix[6] = 0x70 | (prefix[6]! & 0x0f);
  prefix[8] = 0x80 | (prefix[8]! & 0x3f);
  return prefix;
}

interface ChunkLines {
  /** non-blank lines; those not among `users` are malformed */
  lines: number;
  /** the valid lines in input order: their positions (line numbers) and users */
  positions: number[];
  users: string[];
}

/**
 * The staged line of a SQL source row whose user id is NULL: an item, reported MISSING_USER_ID.
 * Every other line is trimmed when staged (uploads and sources alike), so one space is no user's.
 */
export const MISSING_USER_ID_LINE = ' ';
/**
 * The staged line of a SQL source row that is not a valid user id: reported MALFORMED_USER_ID
 * without the row's text, which belongs to the partner's database and may not be an id at all.
 */
export const MALFORMED_SOURCE_LINE = '  ';

// Read once and classified in Node, not in SQL: less backend CPU (decision 132). Blank lines keep
// their place: a line's position is its line number.
async function readChunkLines(tx: Queryable, jobId: string, chunkNo: number): Promise<ChunkLines> {
  const { rows } = await tx.query<{ first_position: string; payload: string }>(
    'SELECT first_position, payload FROM job_chunks WHERE job_id = $1 AND chunk_no = $2', [jobId, chunkNo]);
  const chunk: ChunkLines = { lines: 0, positions: [], users: [] };
  if (!rows[0]) return chunk;
  const failed = { positions: [] as number[], items: [] as string[], reasons: [] as string[] };
  const first = Number(rows[0].first_position);
  const lines = rows[0].payload.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line === '') continue;
    chunk.lines++;
    if (isUserId(line)) {
      chunk.positions.push(first + n);
      chunk.users.push(line);
    } else {
      const missing = line === MISSING_USER_ID_LINE;
      failed.positions.push(first + n);
      failed.items.push(missing || line === MALFORMED_SOURCE_LINE ? '' : line);
      failed.reasons.push(missing ? 'MISSING_USER_ID' : 'MALFORMED_USER_ID');
    }
  }
  if (failed.items.length > 0) {
    await tx.query(
      `INSERT INTO job_failures (job_id, position, item, reason)
       SELECT $1, f.position, f.item, f.reason FROM unnest($2::bigint[], $3::text[], $4::text[]) AS f(position, item, reason)
       ON CONFLICT DO NOTHING`, [jobId, failed.positions, failed.items, failed.reasons]);
  }
  return chunk;
}

/** Distinct, in byte order: the order of COLLATE "C" (user ids are ASCII). */
function sortedDistinct(users: readonly string[]): string[] {
  const sorted = [...users].sort();
  return sorted.filter((user, n) => n === 0 || user !== sorted[n - 1]);
}

// Of the users ($2, distinct and sorted), those who do not hold the template's coupon yet. The
// holder lookup is a LATERAL … LIMIT 1 so that it can only be a probe of the unique index per
// user: as NOT EXISTS, the planner (which guesses 10 rows for an unnest) joined every user against
// all of the template's coupons, a nested loop of 10,000 × the coupons so far per chunk.
const WITHOUT_COUPON = `
SELECT coalesce(string_agg(t.user_id, E'\\n' ORDER BY t.n), '') AS users
  FROM unnest($2::text[]) WITH ORDINALITY AS t(user_id, n)
  LEFT JOIN LATERAL (SELECT true AS held FROM coupons h WHERE h.template_id = $1 AND h.user_id = t.user_id AND h.seq = 1 LIMIT 1) h ON true
 WHERE h.held IS NULL`;

// Of the valid lines ($2 positions, $3 users), the n-th line of a user in the chunk asks for seq
// held + n; lines beyond the limit ($4) are skipped, and the rest are served in input order up to
// the stock left ($5, NULL: no limit).
const NEXT_COUPONS = `
WITH valid AS (
  SELECT position, user_id, row_number() OVER (PARTITION BY user_id ORDER BY position) AS nth
    FROM unnest($2::bigint[], $3::text[]) AS v(position, user_id)
),
wanted AS MATERIALIZED (
  SELECT v.position, v.user_id, v.nth + coalesce(h.held, 0) AS seq
    FROM valid v
    LEFT JOIN LATERAL (SELECT max(c.seq) AS held FROM coupons c WHERE c.template_id = $1 AND c.user_id = v.user_id) h ON true
),
served AS MATERIALIZED (
  SELECT position, user_id, seq FROM wanted WHERE seq <= $4 ORDER BY position LIMIT $5
)
SELECT (SELECT count(*) FROM wanted WHERE seq <= $4)::int AS eligible,
       (SELECT count(*) FROM served)::int AS attempted,
       (SELECT coalesce(string_agg(user_id, E'\\n' ORDER BY user_id COLLATE "C", seq), '') FROM served) AS users,
       (SELECT coalesce(string_agg(seq::text, E'\\n' ORDER BY user_id COLLATE "C", seq), '') FROM served) AS seqs`;

const splitLines = (text: string) => (text === '' ? [] : text.split('\n'));

/** Step 1: what the chunk serves. */
export async function decideChunk(tx: Queryable, r: ChunkRules): Promise<ChunkDecision> {
  const { lines, positions, users } = await readChunkLines(tx, r.jobId, r.chunkNo);
  const malformed = lines - users.length;
  if (r.perUserLimit === 1 && r.remaining === null) {
    // A valid line is served unless its user holds the coupon already or is repeated in the chunk.
    const counts = { lines, malformed, eligible: users.length, attempted: users.length };
    const distinct = sortedDistinct(users);
    if (!r.probeHolders || distinct.length === 0) return { counts, userIds: distinct };
    const { rows } = await tx.query<{ users: string }>(WITHOUT_COUPON, [r.templateId, distinct]);
    return { counts, userIds: splitLines(rows[0]!.users) };
  }
  const { rows } = await tx.query<{ eligible: number; attempted: number; users: string; seqs: string }>(
    NEXT_COUPONS, [r.templateId, positions, users, r.perUserLimit, r.remaining]);
  const { eligible, attempted, users: served, seqs } = rows[0]!;
  return { counts: { lines, malformed, eligible, attempted }, userIds: splitLines(served), seqs: splitLines(seqs).map(Number) };
}

// COPY's binary format (PostgreSQL docs, "COPY … Binary Format"): each field as it is stored, so
// PostgreSQL parses no text per row (three uuids, two timestamps and an integer in text form):
// 10,000,000 users, backend CPU 195 → 187 s, end to end 134.5 → 131.3 s. Written by hand, not
// with pg-copy-streams-binary: that encodes every value through its type (an object per field);
// here a row is 4 constant byte runs of the chunk plus its counter, user id and seq.
const COPY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]); // flags, extension: 0
const COPY_TRAILER = Buffer.from([0xff, 0xff]); // field count -1
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);
const COPY_FIELDS = 7;

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}
/** A timestamptz field: its length, then microseconds since 2000-01-01 UTC. */
function timestampField(at: Date): Buffer {
  const buffer = Buffer.alloc(12);
  buffer.writeInt32BE(8);
  buffer.writeBigInt64BE(BigInt(at.getTime() - POSTGRES_EPOCH_MS) * 1000n, 4);
  return buffer;
}
/** A uuid field: its length, then its 16 bytes. */
const uuidField = (uuid: string) => Buffer.concat([int32(16), Buffer.from(uuid.replaceAll('-', ''), 'hex')]);

// ~55 KB per write (500 rows): each write is one Buffer, freed once COPY has sent it.
const COPY_ROWS_PER_WRITE = 500;

/**
 * Step 2: writes the decided coupons with COPY. Their ids are the chunk's prefix and a counter in
 * the order they are written, so the primary key is appended to at its right edge (PostgreSQL
 * keeps that leaf page at hand: no descent per row, decision 132).
 */
export async function writeCoupons(tx: Tx, p: CouponRows, decision: Pick<ChunkDecision, 'userIds' | 'seqs'>): Promise<number> {
  const { userIds, seqs } = decision;
  if (userIds.length === 0) return 0;
  const copy = tx.query(copyFrom('COPY coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until) FROM STDIN (FORMAT binary)'));
  // field count, then the id's length and its first 12 bytes | its last 4: the counter
  const idHead = Buffer.concat([Buffer.from([0, COPY_FIELDS]), int32(16), p.idPrefix]);
  const owner = Buffer.concat([uuidField(p.partnerId), uuidField(p.templateId)]);
  const validity = Buffer.concat([timestampField(p.validFrom), timestampField(p.validUntil)]);
  const fixedBytes = idHead.length + 4 + owner.length + 4 + 8 + validity.length; // + the user id
  function* pieces() {
    yield COPY_HEADER;
    for (let start = 0; start < userIds.length; start += COPY_ROWS_PER_WRITE) {
      const end = Math.min(userIds.length, start + COPY_ROWS_PER_WRITE);
      let bytes = 0;
      for (let n = start; n < end; n++) bytes += fixedBytes + Buffer.byteLength(userIds[n]!);
      const piece = Buffer.allocUnsafe(bytes);
      let at = 0;
      for (let n = start; n < end; n++) {
        at += idHead.copy(piece, at);
        at = piece.writeUInt32BE(n, at);
        at += owner.copy(piece, at);
        const user = piece.write(userIds[n]!, at + 4);
        at = piece.writeInt32BE(user, at) + user;
        at = piece.writeInt32BE(4, at);
        at = piece.writeInt32BE(seqs?.[n] ?? 1, at);
        at += validity.copy(piece, at);
      }
      yield piece;
    }
    yield COPY_TRAILER;
  }
  await pipeline(Readable.from(pieces()), copy);
  return userIds.length;
}

/**
 * Whether the template has coupons this job did not write (claims, other jobs): read with the job's
 * counts in one snapshot, as every chunk raises both in its transaction.
 */
export async function othersHold(tx: Queryable, templateId: string, jobId: string): Promise<boolean> {
  const { rows } = await tx.query<{ others: boolean }>(
    'SELECT t.issued_count > j.succeeded AS others FROM coupon_templates t, jobs j WHERE t.id = $1 AND j.id = $2', [templateId, jobId]);
  return rows[0]?.others ?? true;
}

/** Locks the template row (serialising with claims and other chunks) and returns the stock left. */
export async function lockRemainingStock(tx: Queryable, templateId: string): Promise<number | null> {
  const { rows } = await tx.query<{ remaining: number | null }>(
    'SELECT total_quantity - issued_count AS remaining FROM coupon_templates WHERE id = $1 FOR UPDATE', [templateId]);
  return rows[0]?.remaining ?? null;
}

export async function addIssued(tx: Queryable, templateId: string, inserted: number): Promise<void> {
  if (inserted > 0) await tx.query('UPDATE coupon_templates SET issued_count = issued_count + $2 WHERE id = $1', [templateId, inserted]);
}
