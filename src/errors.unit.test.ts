// The catalog and docs/errors.md must list exactly the same codes with the same statuses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG } from './errors.ts';

const documented = new Map(
  [...readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8').matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)]
    .map((match) => [match[1]!, Number(match[2])]),
);

describe('error catalog', () => {
  it('documents every code with its status, and nothing else', () => {
    const catalog = new Map(Object.entries(ERROR_CATALOG).map(([code, entry]) => [code, entry.status as number]));
    expect([...documented.entries()].sort()).toEqual([...catalog.entries()].sort());
  });

  it('includes every refusal named in the HTTP contract', () => {
    const contract = ['SOLD_OUT', 'CLAIM_LIMIT_REACHED', 'CLAIM_NOT_OPEN', 'CLAIM_CLOSED', 'TEMPLATE_NOT_FOUND',
      'COUPON_ALREADY_USED', 'COUPON_EXPIRED', 'COUPON_NOT_YET_VALID', 'MIN_ORDER_AMOUNT_NOT_MET', 'ORDER_MISMATCH',
      'INSUFFICIENT_POINTS', 'POINTS_ALREADY_USED', 'ALREADY_CANCELLED', 'IDEMPOTENCY_KEY_REQUIRED',
      'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_IN_PROGRESS'];
    for (const code of contract) expect(ERROR_CATALOG).toHaveProperty(code);
  });
});
