// The two encodings of a claim in Redis, written by claim-5.lua: the stream entry (fields c, u,
// s, q, t, and f, v: the coupon's window, when the state held a validity) and the claims-hash record
// "slot seq issuedAtMs userId[ validFromMs validUntilMs]" (user ids hold no spaces).
import type { ClaimedCoupon } from './claim-repository.ts';

export function claimFromStreamEntry(fields: Record<string, string>): ClaimedCoupon {
  return {
    id: fields.c!, userId: fields.u!, slot: Number(fields.s), seq: Number(fields.q), issuedAt: new Date(Number(fields.t)),
    ...(fields.v === undefined ? {} : { validFrom: new Date(Number(fields.f)), validUntil: new Date(Number(fields.v)) }),
  };
}

export function claimFromRecord(couponId: string, record: string): ClaimedCoupon {
  const [slot, seq, issuedAt, userId, validFrom, validUntil] = record.split(' ');
  return {
    id: couponId, userId: userId!, slot: Number(slot), seq: Number(seq), issuedAt: new Date(Number(issuedAt)),
    ...(validUntil === undefined ? {} : { validFrom: new Date(Number(validFrom)), validUntil: new Date(Number(validUntil)) }),
  };
}
