// k6 version of `npm run bench:claim` (issue 3) for teams that load-test with k6 (v0.57+ runs
// TypeScript directly): one event of QUANTITY coupons, USERS distinct users each sending
// CLAIMS_PER_USER claims back to back, VUS virtual users (one keep-alive connection each).
//
//   k6 run -e BASE_URL=http://localhost:3000 -e API_KEY=stp_… [-e VUS=1024] ops/k6/claim.ts
//
// The event is created in setup() unless TEMPLATE_ID names an existing one. Thresholds fail the
// run unless exactly QUANTITY claims got 201, no user got two, every other answer was a 409, and
// p99 stayed under 100 ms; teardown() waits until PostgreSQL has counted every issued coupon.
import { check, fail, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import type { Options } from 'k6/options';

const BASE_URL = __ENV.BASE_URL ?? 'http://localhost:3000';
const API_KEY = __ENV.API_KEY ?? '';
const USERS = Number(__ENV.USERS ?? 100_000);
const QUANTITY = Number(__ENV.QUANTITY ?? 10_000);
const CLAIMS_PER_USER = Number(__ENV.CLAIMS_PER_USER ?? 3);
const VUS = Number(__ENV.VUS ?? 256);

const issued = new Counter('claims_issued');
const soldOut = new Counter('claims_sold_out');
const limitReached = new Counter('claims_limit_reached');
const unexpected = new Counter('claims_unexpected');
const usersWithTwoCoupons = new Counter('users_with_two_coupons');

export const options: Options = {
  scenarios: {
    // Each iteration is one user; shared-iterations hands every user to exactly one VU.
    claims: { executor: 'shared-iterations', vus: VUS, iterations: USERS, maxDuration: '15m' },
  },
  thresholds: {
    'http_req_duration{name:claim}': ['p(99)<100'],
    claims_issued: [`count==${QUANTITY}`],
    claims_unexpected: ['count==0'],
    users_with_two_coupons: ['count==0'],
  },
  setupTimeout: '60s',
  teardownTimeout: '120s',
};

// A 409 is a correct answer here (sold out, or the user's second click), not a failed request.
http.setResponseCallback(http.expectedStatuses(201, 409));

const headers = { 'content-type': 'application/json', 'x-api-key': API_KEY };

export function setup(): { templateId: string } {
  if (!API_KEY) fail('set -e API_KEY=<a partner API key> (POST /v1/partners with the admin token prints one)');
  if (__ENV.TEMPLATE_ID) return { templateId: __ENV.TEMPLATE_ID };
  const now = Date.now();
  const response = http.post(`${BASE_URL}/v1/coupon-templates`, JSON.stringify({
    name: `k6 claim ${QUANTITY}`,
    discount: { type: 'PERCENT', value: 10, maxAmount: 5_000 },
    totalQuantity: QUANTITY,
    perUserLimit: 1,
    claimStartsAt: new Date(now - 60_000).toISOString(),
    claimEndsAt: new Date(now + 3_600_000).toISOString(),
    validity: { type: 'RELATIVE', days: 30 },
  }), { headers });
  if (response.status !== 201) fail(`creating the event answered ${response.status}: ${String(response.body)}`);
  return { templateId: response.json('id') as string };
}

export default function claimAsOneUser(data: { templateId: string }): void {
  const userId = `k6-user-${exec.scenario.iterationInTest}`;
  const body = JSON.stringify({ userId });
  let coupons = 0;
  for (let click = 0; click < CLAIMS_PER_USER; click++) {
    const response = http.post(`${BASE_URL}/v1/coupon-templates/${data.templateId}/claims`, body, { headers, tags: { name: 'claim' } });
    const code = response.status === 409 ? (response.json('error.code') as string) : undefined;
    if (response.status === 201) {
      coupons++;
      issued.add(1);
    } else if (code === 'SOLD_OUT') {
      soldOut.add(1);
    } else if (code === 'CLAIM_LIMIT_REACHED') {
      limitReached.add(1);
    } else {
      unexpected.add(1);
    }
    check(response, { 'claim answered 201 or 409': (r) => r.status === 201 || r.status === 409 });
  }
  if (coupons > 1) usersWithTwoCoupons.add(1);
}

/** Every acknowledged coupon must reach PostgreSQL: wait until the event's issuedCount says so. */
export function teardown(data: { templateId: string }): void {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = http.get(`${BASE_URL}/v1/coupon-templates/${data.templateId}`, { headers });
    const issuedCount = response.json('issuedCount') as number;
    if (issuedCount === QUANTITY) return;
    if (Date.now() > deadline) fail(`PostgreSQL holds ${issuedCount} coupons of the event 60 s after the run, expected ${QUANTITY}`);
    sleep(0.1);
  }
}
