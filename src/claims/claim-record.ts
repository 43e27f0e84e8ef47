// The two encodings of a claim in Redis, written by claim-5.lua: the stream entry (fields c, u,
// s, q, t) and the claims-hash record "slot seq issuedAtMs userId" (user ids hold no spaces).
import type { ClaimedCoupon } from './claim-repository.ts';

export function claimFromStreamEntry(fields: Record<string, string>): ClaimedCoupon {
  return { id: fields.c!, userId: fields.u!, slot: Number(fields.s), seq: Number(fields.q), issuedAt: new Date(Number(fields.t)) };
}

export function claimFromRecord(couponId: string, record: string): ClaimedCoupon {
  const [slot, seq, issuedAt, userId] = record.split(' ');
  return { id: couponId, userId: userId!, slot: Number(slot), seq: Number(seq), issuedAt: new Date(Number(issuedAt)) };
}
