// CSV distribution uploads (issues 15, 16): a slow client holds no database connection, uploads are
// bounded per partner and in total, a body must arrive within a total deadline, spool files never
// outlive their request, and the body is read as real CSV with ?column=.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOnce } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { pointsClient } from '../../test/harness/points-client.ts';
import { appWithJobQueue, finishedJob } from '../../test/harness/job-app.ts';
import { createPartner, createTestApp, templateBody, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

type Headers = Record<string, string>;

/** A CSV body that trickles one line every `everyMs` until `finish()` (or `cut()`). */
function trickle(prefix: string, everyMs = 50) {
  let n = 0;
  const stream = new Readable({ read() { /* pushed by the timer */ } });
  stream.push('user_id\n');
  const timer = setInterval(() => stream.push(`${prefix}-${n++}\n`), everyMs);
  return {
    stream,
    finish: () => { clearInterval(timer); stream.push(`${prefix}-last\n`); stream.push(null); },
    stop: () => { clearInterval(timer); stream.destroy(); },
  };
}

const spoolFiles = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith('.upload'));

describe('CSV uploads hold no database connection while a client sends', () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stampede-spool-test-'));
    // Room for thirty uploads of one partner at once: the point is that they cost no connection.
    t = await createTestApp({ env: { STAMPEDE_UPLOAD_DIR: dir, STAMPEDE_UPLOADS_PER_PARTNER: '30', STAMPEDE_UPLOADS_TOTAL: '40' } });
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves another partner within 100 ms p99 while thirty uploads of one partner trickle in', async () => {
    const other = await createPartner(t.app);
    const points = pointsClient(t.app, other.headers);
    /** Two lanes of template creation, claims, reads and earns; returns the statuses and the p99 (ms). */
    const otherPartnerWork = async (round: string) => {
      const timings: number[] = [];
      const statuses: number[] = [];
      const timed = async <T extends { statusCode: number } | { status: number }>(call: () => Promise<T>): Promise<T> => {
        const started = performance.now();
        const answer = await call();
        timings.push(performance.now() - started);
        statuses.push('status' in answer ? answer.status : answer.statusCode);
        return answer;
      };
      await Promise.all(Array.from({ length: 2 }, async (_, lane) => {
        for (let i = 0; i < 30; i++) {
          const user = `${round.replaceAll(' ', '-')}-${lane}-${i}`;
          const created = await timed(() => t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: other.headers, payload: templateBody() }));
          const templateId = created.json<{ id: string }>().id;
          await timed(() => claimOnce(t.app, other.headers, templateId, user));
          await timed(() => t.app.inject({ url: '/v1/coupon-templates?limit=10', headers: other.headers }));
          await timed(() => points.earn({ userId: user, amount: 100, reason: 'order' }));
          await timed(() => t.app.inject({ url: `/v1/users/${user}/points`, headers: other.headers }));
        }
      }));
      timings.sort((a, b) => a - b);
      const p99 = timings[Math.ceil(timings.length * 0.99) - 1]!;
      console.log(`${round}: ${timings.length} calls of the other partner, p50 ${timings[Math.floor(timings.length / 2)]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${timings.at(-1)!.toFixed(1)} ms`);
      return { statuses, p99 };
    };
    // The same calls without uploads first: the machine's own figure (and a warm-up).
    const alone = await otherPartnerWork('without uploads');
    expect(alone.statuses.filter((status) => status >= 300)).toEqual([]);

    const slow = await createPartner(t.app);
    const slowTemplate = await createTemplate(t.app, slow.headers, { totalQuantity: null, claimStartsAt: new Date(Date.now() + 86_400_000).toISOString(), claimEndsAt: new Date(Date.now() + 2 * 86_400_000).toISOString() });
    const uploads = Array.from({ length: 30 }, (_, i) => trickle(`slow-${i}`));
    const answers = uploads.map((upload) => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${slowTemplate}/distributions`,
      headers: { ...slow.headers, 'content-type': 'text/csv' }, payload: upload.stream,
    }));
    try {
      await waitFor(async () => (await spoolFiles(dir)).length === 30, { what: 'thirty uploads being received' });
      expect(t.ctx.db.totalCount - t.ctx.db.idleCount).toBe(0); // nothing pinned by the uploads
      const during = await otherPartnerWork('during 30 trickling uploads');
      expect(during.statuses.filter((status) => status >= 300)).toEqual([]);
      // 100 ms, unless the machine is slower than that without any upload (a loaded CI runner).
      expect(during.p99).toBeLessThan(Math.max(100, 2 * alone.p99));
    } finally {
      for (const upload of uploads) upload.finish();
    }
    const done = await Promise.all(answers);
    expect(done.map((answer) => answer.statusCode)).toEqual(Array.from({ length: 30 }, () => 202));
    expect(await spoolFiles(dir)).toEqual([]);
  });
});

describe('CSV upload bounds', () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stampede-spool-test-'));
    t = await createTestApp({ env: { STAMPEDE_UPLOAD_DIR: dir, STAMPEDE_UPLOADS_PER_PARTNER: '2', STAMPEDE_UPLOADS_TOTAL: '3', STAMPEDE_UPLOAD_DEADLINE_MS: '1500' } });
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  const upload = (headers: Headers, templateId: string, payload: Readable | string) => t.app.inject({
    method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: { ...headers, 'content-type': 'text/csv' }, payload,
  });

  it('refuses a third upload of one partner with 429 and one past the total with 503, both with Retry-After', async () => {
    const [a, b, c] = [await createPartner(t.app), await createPartner(t.app), await createPartner(t.app)];
    const templates = [await createTemplate(t.app, a.headers), await createTemplate(t.app, b.headers), await createTemplate(t.app, c.headers)];
    const slow = [trickle('a1', 100), trickle('a2', 100), trickle('b1', 100)];
    const answers = [upload(a.headers, templates[0]!, slow[0]!.stream), upload(a.headers, templates[0]!, slow[1]!.stream), upload(b.headers, templates[1]!, slow[2]!.stream)];
    try {
      await waitFor(async () => (await spoolFiles(dir)).length === 3, { what: 'three uploads being received' });
      const partnerFull = await upload(a.headers, templates[0]!, 'user_id\nx\n');
      expect(partnerFull.statusCode).toBe(429);
      expect(partnerFull.json().error.code).toBe('BULK_UPLOAD_LIMIT_REACHED');
      expect(Number(partnerFull.headers['retry-after'])).toBeGreaterThan(0);
      const allFull = await upload(c.headers, templates[2]!, 'user_id\nx\n');
      expect(allFull.statusCode).toBe(503);
      expect(allFull.json().error.code).toBe('BULK_UPLOADS_BUSY');
      expect(Number(allFull.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      for (const s of slow) s.finish();
    }
    expect((await Promise.all(answers)).map((answer) => answer.statusCode)).toEqual([202, 202, 202]);
    expect((await upload(c.headers, templates[2]!, 'user_id\nx\n')).statusCode).toBe(202); // slots given back
    expect(await spoolFiles(dir)).toEqual([]);
  });

  it('cuts off an upload that trickles past the total deadline with 408, deletes its spool file and frees its slot', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers);
    const slow = trickle('late', 20); // a line every 20 ms: never idle
    const started = Date.now();
    try {
      const answer = await Promise.race([
        upload(partner.headers, templateId, slow.stream),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the upload was not cut off within 10 s')), 10_000)),
      ]);
      expect(answer.statusCode).toBe(408);
      expect(answer.json().error.code).toBe('UPLOAD_TIMEOUT');
      expect(answer.headers.connection).toBe('close');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    } finally {
      slow.stop();
    }
    expect(await spoolFiles(dir)).toEqual([]);
    const { rows: [jobs] } = await t.ctx.db.query('SELECT count(*)::int AS n FROM jobs WHERE partner_id = $1', [partner.id]);
    expect(jobs!.n).toBe(0);
    // both of the partner's slots are free again
    const again = await Promise.all([upload(partner.headers, templateId, 'user_id\nok-1\n'), upload(partner.headers, templateId, 'user_id\nok-2\n')]);
    expect(again.map((answer) => answer.statusCode)).toEqual([202, 202]);
  });

  it('deletes the spool file of an upload its client abandons, and of a CSV it refuses', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers);
    const slow = trickle('gone', 20);
    const answer = upload(partner.headers, templateId, slow.stream);
    await waitFor(async () => (await spoolFiles(dir)).length === 1, { what: 'the upload being received' });
    slow.stream.destroy(new Error('client went away'));
    await answer.catch(() => undefined);
    await waitFor(async () => (await spoolFiles(dir)).length === 0, { what: 'the spool file being deleted' });
    const refused = await upload(partner.headers, templateId, 'user_id,email\nu1,a@example.com\n');
    expect(refused.json().error.code).toBe('CSV_COLUMN_REQUIRED');
    expect(await spoolFiles(dir)).toEqual([]);
    expect((await Promise.all([upload(partner.headers, templateId, 'u-a\n'), upload(partner.headers, templateId, 'u-b\n')])).map((r) => r.statusCode)).toEqual([202, 202]);
  });

  it('deletes at start the spool files that stopped processes left behind, and only those', async () => {
    const dead = path.join(dir, `999999999.0123456789ab.${randomUUID()}.upload`);
    const ownPidOtherRun = path.join(dir, `${process.pid}.ba9876543210.${randomUUID()}.upload`);
    const alive = path.join(dir, `${process.ppid}.0123456789ab.${randomUUID()}.upload`);
    const unrelated = path.join(dir, 'notes.txt');
    for (const file of [dead, ownPidOtherRun, alive, unrelated]) await writeFile(file, 'x');
    const second = await createTestApp({ env: { STAMPEDE_UPLOAD_DIR: dir } });
    await second.close();
    expect((await readdir(dir)).sort()).toEqual([path.basename(alive), 'notes.txt'].sort());
    await rm(alive);
    await rm(unrelated);
  });
});

describe('CSV distributions are read as CSV', () => {
  const t = appWithJobQueue();

  const distribute = (headers: Headers, templateId: string, body: string, query = '') => t.app.inject({
    method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions${query}`, headers: { ...headers, 'content-type': 'text/csv' }, payload: body,
  });
  const holders = async (templateId: string) =>
    (await t.ctx.db.query('SELECT user_id FROM coupons WHERE template_id = $1 ORDER BY user_id COLLATE "C"', [templateId])).rows.map((row) => row.user_id);
  const failures = async (headers: Headers, jobId: string) => (await t.app.inject({ url: `/v1/jobs/${jobId}/failures`, headers })).json().items;

  // A spreadsheet export: BOM, CRLF, a quoted header, quoted fields with commas, doubled quotes and
  // a line break, a bad id, an empty id, a blank line, and a short last row.
  const sheet = '\uFEFFemail,"user id",note\r\n' +
    'a@example.com,u-1,"hello, world"\r\n' +
    '"b@example.com","u-2","said ""hi"""\r\n' +
    'c@example.com,u-3,"two\r\nlines"\r\n' +
    'd@example.com,bad id,x\r\n' +
    'e@example.com,,x\r\n' +
    '\r\n' +
    'f@example.com,u-4\r\n';

  // The same without a quote (read by the quote-free reader): the multi-line record is one line.
  const plainSheet = '\uFEFFemail,user id,note\r\n' +
    'a@example.com,u-1,hello\r\n' +
    'b@example.com, u-2 ,hi\r\n' +
    'c@example.com,u-3,two\r\n' +
    'd@example.com,bad id,x\r\n' +
    'e@example.com,,x\r\n' +
    '\r\n' +
    'f@example.com,u-4';

  for (const [shape, body, badLine] of [['quoted', sheet, 6], ['quote-free', plainSheet, 5]] as const) {
    for (const column of ['user%20id', '2']) {
      it(`picks the user id column of a ${shape} file by ${column === '2' ? '1-based index' : 'header name'}, and reports bad ids with their line numbers`, async () => {
        const partner = await createPartner(t.app);
        const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
        const accepted = await distribute(partner.headers, templateId, body, `?column=${column}`);
        expect(accepted.statusCode, accepted.body).toBe(202);
        const job = await finishedJob(t.app, partner.headers, accepted.json().jobId);
        expect(job).toMatchObject({ status: 'SUCCEEDED', total: 6, processed: 6, succeeded: 4, failed: 2 });
        expect(await holders(templateId)).toEqual(['u-1', 'u-2', 'u-3', 'u-4']);
        expect(await failures(partner.headers, accepted.json().jobId)).toEqual([
          { position: badLine, item: 'bad id', reason: 'MALFORMED_USER_ID' }, // quoted: the record on lines 4–5 counts two
          { position: badLine + 1, item: '', reason: 'MISSING_USER_ID' },
        ]);
      });
    }
  }

  it('refuses a file of several columns without ?column=, and a column it does not have, creating no job', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    const exported = 'user_id,email\nu100,a@example.com\n';
    const refused = await distribute(partner.headers, templateId, exported);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe('CSV_COLUMN_REQUIRED');
    for (const query of ['?column=userid', '?column=3']) {
      const missing = await distribute(partner.headers, templateId, exported, query);
      expect(missing.statusCode, query).toBe(400);
      expect(missing.json().error.code, query).toBe('CSV_COLUMN_NOT_FOUND');
    }
    const unclosed = await distribute(partner.headers, templateId, 'user_id\nu1\n"u2\n', '');
    expect(unclosed.statusCode).toBe(400);
    expect(unclosed.json().error).toMatchObject({ code: 'CSV_MALFORMED', details: { line: 3 } }); // where the quote opens
    const { rows: [jobs] } = await t.ctx.db.query('SELECT count(*)::int AS n FROM jobs WHERE partner_id = $1', [partner.id]);
    expect(jobs!.n).toBe(0);

    const accepted = await distribute(partner.headers, templateId, exported, '?column=user_id');
    expect(accepted.statusCode).toBe(202);
    expect(await finishedJob(t.app, partner.headers, accepted.json().jobId)).toMatchObject({ status: 'SUCCEEDED', total: 1, succeeded: 1 });
    expect(await holders(templateId)).toEqual(['u100']);
  });

  it('reads a one-column file with a BOM, CRLF, quoted ids, doubled quotes and a quoted line break without ?column=', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    // "q,3" is one id (a comma is printable), "q""5" is q"5; "q 4" and the two-line "q\n6" are not
    // ids: item failures on the line each starts on
    const body = '\uFEFFuser_id\r\n"q-1"\r\nq-2\r\n"q,3"\r\n"q 4"\r\n"q""5"\r\n"q\n6"\r\nq-7\r\n';
    const accepted = await distribute(partner.headers, templateId, body);
    expect(accepted.statusCode, accepted.body).toBe(202);
    const { jobId } = accepted.json();
    expect(await finishedJob(t.app, partner.headers, jobId)).toMatchObject({ status: 'SUCCEEDED', total: 7, succeeded: 5, failed: 2 });
    expect(await holders(templateId)).toEqual(['q"5', 'q,3', 'q-1', 'q-2', 'q-7']);
    expect(await failures(partner.headers, jobId)).toEqual([
      { position: 5, item: 'q 4', reason: 'MALFORMED_USER_ID' },
      { position: 7, item: 'q\uFFFD6', reason: 'MALFORMED_USER_ID' }, // a line break cannot be staged as such
    ]);
  });
});
